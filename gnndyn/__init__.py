"""gnndyn — a laboratory for the optimization theory of graph neural networks.

The data flow, one subpackage per stage::

    spec ─► data ─► operators ─► models ─► training (+ probes) ─► store ─► theory ─► report
                                                                              experiments tie them together

Public surface (everything else is internal and may change)::

    from gnndyn import Graph, csbm, load_graph, load_planetoid      # data
    from gnndyn import build_operator, Operator                      # operators (sparse, with spectral facts)
    from gnndyn import DeepGNN, get_activation, get_loss             # models (Keriven eq. 1, signals F, H, X, B)
    from gnndyn import train, make_optimizer                         # training rules with explicit state
    from gnndyn import probes, Recorder, RunStore                    # measurements and the run folder
    from gnndyn import Verdict, theory                               # theorem checks
    from gnndyn import make_spec, run_experiment                     # named experiments
    from gnndyn import Monitor                                       # the same measurements on any PyTorch model
"""

__version__ = "0.1.0"

from gnndyn import probes, theory  # noqa: E402
from gnndyn.data import Graph, csbm, erdos_renyi, load_graph, load_planetoid, random_regular, sbm  # noqa: E402
from gnndyn.errors import AssumptionError, DivergenceError, GnndynError, UnknownNameError  # noqa: E402
from gnndyn.experiments import get_experiment, load_spec, make_spec, run_experiment  # noqa: E402
from gnndyn.monitor import Monitor  # noqa: E402
from gnndyn.models import DeepGNN, Signals, get_activation, get_loss, register_activation  # noqa: E402
from gnndyn.operators import Operator, build_operator, spectral_facts  # noqa: E402
from gnndyn.store import Recorder, RunStore  # noqa: E402
from gnndyn.theory import Verdict  # noqa: E402
from gnndyn.training import Adam, GradientDescent, make_optimizer, train  # noqa: E402

__all__ = [
    "__version__", "Graph", "csbm", "sbm", "erdos_renyi", "random_regular", "load_graph", "load_planetoid",
    "Operator", "build_operator", "spectral_facts", "DeepGNN", "Signals", "get_activation", "get_loss",
    "register_activation", "train", "make_optimizer", "GradientDescent", "Adam", "probes", "Recorder", "RunStore",
    "theory", "Verdict", "make_spec", "run_experiment", "get_experiment", "load_spec", "GnndynError",
    "UnknownNameError", "AssumptionError", "DivergenceError", "Monitor",
]
