"""Experiments of Keriven, *Backward oversmoothing* (paper 000); importing this package registers them.

* ``oversmoothing-at-init`` — Fig. 2, Thm 1, Thm 2 (:mod:`.at_init`)
* ``backward-oversmoothing`` — Fig. 1 (:mod:`.backward`)
* ``stationary-output-layer`` — Thm 3, Thm 4, Cor 1 (:mod:`.stationary`)
* ``spurious-stationary-points`` — Cor 2 (:mod:`.spurious`)
* ``gnn-vs-mlp`` — Prop 1, Prop 2 (:mod:`.gnn_vs_mlp`)
"""

from gnndyn.experiments.keriven import (
    at_init,  # noqa: F401
    backward,  # noqa: F401
    gnn_vs_mlp,  # noqa: F401
    spurious,  # noqa: F401
    stationary,  # noqa: F401
)
