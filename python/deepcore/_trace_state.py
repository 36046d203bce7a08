"""What deepcore.jit notes while it traces: the modules and optimizers a traced call used, so
their state (training mode, parameters, hyperparameters) joins the graph's guards."""
active = False
modules: dict = {}
optimizers: dict = {}


def note_module(m) -> None:
    modules.setdefault(id(m), m)


def note_optimizer(o) -> None:
    optimizers.setdefault(id(o), o)
