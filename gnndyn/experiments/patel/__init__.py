"""Gradient-flow experiments of Patel, Savostianov & Schaub, *Convergence of gradient based training for linear
Graph Neural Networks* (arXiv 2501.14440, §6); importing this package registers them.

* ``patel-fig2`` — σ_small((XS^H)_{*I}) against n̄ for four graph families and five operators (:mod:`.fig2`)
* ``patel-fig3`` … ``patel-fig7`` — relative loss against T with Thm 3.1's bound on G(n,p), the normalized flow on
  G(500,p), K_k(n), SBM and BA (:mod:`.fig3` … :mod:`.fig7`, on the shared :mod:`.sweep`)
* ``patel-fig8`` — the US-counties climate graph (:mod:`.fig8`)
"""

from gnndyn.experiments.patel import fig2, fig3, fig4, fig5, fig6, fig7, fig8  # noqa: F401
