"""Experiments of Patel, Savostianov & Schaub, *Convergence of gradient based training for linear Graph Neural
Networks* (arXiv 2501.14440); importing this package registers them.

Gradient flow (§6), on :mod:`.common` and the shared :mod:`.sweep`:

* ``patel-fig2`` — σ_small((XS^H)_{*I}) against n̄ for four graph families and five operators (:mod:`.fig2`)
* ``patel-fig3`` … ``patel-fig7`` — relative loss against T with Thm 3.1's bound on G(n,p), the normalized flow on
  G(500,p), K_k(n), SBM and BA (:mod:`.fig3` … :mod:`.fig7`)
* ``patel-fig8`` — the US-counties climate graph (:mod:`.fig8`)

§4–§5 and what the paper leaves open, on :mod:`.sections_common` and the NumPy paths of
:mod:`gnndyn.theory.patel.fast_paths`:

* ``patel-energy`` — balancedness, Thm 4.2's minimum energy, Thm 4.4 and (4.4)'s feasibility (:mod:`.energy`)
* ``patel-descent`` — Thm 5.1, the step-size sweep, Remark 5.2, the normalized flow beside GD (:mod:`.descent`)
* ``patel-open`` — a bottleneck; the normalized flow's rate and floor (:mod:`.open`)
"""

from gnndyn.experiments.patel import descent, energy, fig2, fig3, fig4, fig5, fig6, fig7, fig8, open  # noqa: F401
