"""deepcore.optim: PyTorch's optimizers and learning-rate schedulers.

Each optimizer step updates every parameter of a param group in one fused C++ call
(csrc/kernels/cpu/optim.h), with PyTorch's update formulas and order of operations.
"""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam
from .adamw import AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]
