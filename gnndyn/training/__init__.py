"""Training rules sharing one interface (init/update with explicit state) and the training loop."""

from gnndyn.training.loop import TrainResult, loss_and_grads, train
from gnndyn.training.optimizers import OPTIMIZERS, Adam, AdamState, GradientDescent, make_optimizer

__all__ = ["train", "TrainResult", "loss_and_grads", "GradientDescent", "Adam", "AdamState", "OPTIMIZERS", "make_optimizer"]
