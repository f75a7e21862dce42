"""The architectures of ``monitor-zoo`` by name, and the optimizer settings of PyTorch Geometric's examples.

Kept apart from :mod:`gnndyn.experiments.monitor.models` so that listing and validating the experiment does
not load PyTorch Geometric (seconds at every start of the command line and of every sweep worker).
"""

ARCHS = ("gcn", "gat", "gin", "sage", "gcnii", "mlp")

#: optimizer settings of PyG's examples: (learning rate, weight decay)
OPTIM = {"gcn": (0.01, 5e-4), "gat": (0.005, 5e-4), "gin": (0.01, 0.0), "sage": (0.01, 5e-4),
         "gcnii": (0.01, 5e-4), "mlp": (0.01, 5e-4)}
