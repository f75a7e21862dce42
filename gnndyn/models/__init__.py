"""Models whose intermediate signals are reachable (third stage of the data flow)."""

from gnndyn.models.activations import ACTIVATIONS, Activation, get_activation, register_activation
from gnndyn.models.deep_gnn import DeepGNN, Signals, backward_recursion
from gnndyn.models.losses import LOSSES, Loss, cross_entropy, get_loss, mse

__all__ = [
    "DeepGNN", "Signals", "backward_recursion", "Activation", "ACTIVATIONS", "get_activation",
    "register_activation", "Loss", "LOSSES", "get_loss", "mse", "cross_entropy",
]
