"""What deepcore.jit notes while it traces: the modules and optimizers a traced call used, so
their state (training mode, parameters, hyperparameters) joins the graph's guards."""
active = False
# Bumped by every change to a module's training mode, parameters, buffers or submodules, so
# deepcore.jit compares its module guards again only after one.
epoch = 0
modules: dict = {}
optimizers: dict = {}


def note_module(m) -> None:
    modules.setdefault(id(m), m)


def note_optimizer(o) -> None:
    optimizers.setdefault(id(o), o)
