r"""Experiments of Awasthi et al., *Convergence of gradient descent for GNNs* (paper 001), §5 and App. D.

Importing this package registers both (``awasthi-fig1`` in :mod:`.fig1`, ``awasthi-fig2`` in :mod:`.fig2`,
shared pieces in :mod:`.common`). Both train on the exact population loss
(:mod:`gnndyn.models.teacher_student`), never on samples, with all configurations and seeds stacked as one
leading batch dimension, in float64.

``awasthi-fig1`` — Fig. 1: one-round ReLU GNN on random d-regular graphs, n = 100, r = 10, h = 10,
d ∈ {5, 10, 30, 80, 99}, steps 2e-5 (d = 5) and 1e-6 (others) (App. D), W₀ ~ N(0, I), unit-row teacher.
The paper does not print its number of iterations; the default 6000 steps take every d to the float64 floor
of the loss (``--set train.steps=...`` runs longer). ``train.lr_rule=lemma1`` uses η = 1/(√96·π·A′) instead,
inside Lemma 1's interval. Quantities (series ``d=<d>``, or the graph name with ``degrees=null``):
``loss`` (Σ_j L_j), ``grad_norm``; per hidden unit j (column ``layer`` = j): ``loss_row``, ``alpha``,
``beta``, ``ell``, ``B_prime``, ``C_prime``, ``pl_ratio`` (‖∇L_j‖²/L_j), ``lambda_max``, ``lambda_min``
(eigenvalues of the (α, β) Hessian, Lemma 2), and ``eta_lambda_max`` (η·max_j λ_max, the descent condition
ηL ≤ 1 of Thm 1's proof, eq. 16); at step 0: ``A_prime``, ``eta``, ``eta_A_prime``, ``S2``, ``two_hop_nnz``,
``d_max``, ``n``. Checks: Lemmas 1, 2, 3, 4, 5 (Lemma 2 at γ = 0, ½, 1 of every segment between iterates
t ≥ 1), Thm 1 as a rate, the §5 remarks (larger d converges faster; ReLU rates not much better than 1/ε²).
Table ``rates``.

``awasthi-fig2`` — Fig. 2: deep linear GNN, L ∈ {1, 2, 3}, steps 0.1 (L = 1) and 0.0075 (L = 2, 3)
(App. D), W₁,₀ = W₂,₀ = I, teacher W_k* = s·GGᵀ/r + 0.001·I. The paper prints neither the degree nor the
loss normalisation of Fig. 2, and with eq. (20) as written on n = 100 nodes these steps diverge at once
(the Hessian scale is n(d²+1)(d+1)^{2L−2}); so by default the loss is divided by
Σ_j‖T_j(I, I)‖²/r = n(d+1)^{2L} (``loss_scale=identity``; ``none`` gives eq. 20 as is), the graph is
5-regular, and the teacher scale s = 0.5 keeps L = 3 stable at step 0.0075 (s = 1 diverges for some seeds).
Every theorem is checked in the paper's own units (raw loss, step η_paper = 2κη, see
:func:`gnndyn.theory.awasthi.check_lemma12`). Default 20 000 steps (not printed in the paper).
Quantities (series ``L=<depth>``): ``loss`` (the trained, scaled loss), ``loss_raw`` (eq. 20),
``sv`` (singular values of M_t = W₁ + dW₂ ascending, ``layer`` = i; regular graphs), ``sigma_mode``
(v_iᵀM_tv_i in M*'s eigenbasis), ``sv_target`` (σ*_i, step 0), ``sv_gap`` (max_i |σ_{i,t} − σ*_i|/σ*_i),
``commutator`` (‖[M_t, M*]‖_F/‖M*‖²_F); on other graphs ``sv_W1``, ``sv_W2`` (App. C's α_p, β_p).
Checks: linear convergence (fitted), Lemma 12, Lemma 13, Thm 2, App. C eq. (46). Table ``rates``.

Any gnndyn graph works (``--set graph.name=erdos-renyi``, ``--set graph.name=cora --set degrees=null``); a
generator left without n gets n = 100 and one left without a degree gets (average) degree 5. On a graph
that is not regular, Lemmas 12–13 and Thm 2 (stated for d-regular graphs) are not evaluated; eq. (46) is.
"""

from gnndyn.experiments.awasthi import fig1, fig2  # noqa: F401
