r"""One-round ReLU GNN in the teacher–student setting, trained on its exact *population* loss.

Awasthi et al., *Convergence of gradient descent for GNNs*, §3 (eqs. 4–15) and App. B. The teacher is

.. math::  y = \sum_{i=1}^n \sigma(W^* \bar x_i), \qquad \bar x_i = \sum_{j \in N[i]} x_j,
           \qquad x_j \sim N(0, I_r), \qquad \sigma(t) = \sqrt2 \max(t, 0),

with :math:`N[i]` the *closed* neighbourhood of i (i and its neighbours: "each :math:`\bar x_i` is a sum of
d + 1 messages", §3.1), :math:`W^* \in \mathbb R^{h \times r}` with unit rows, and the student is the same
network with weights W. The loss :math:`L(W) = \frac12 E\|\hat y - y\|^2` (eq. 5) splits over the rows,
:math:`L = \sum_j L_j(w_j)` (eq. 7), and each :math:`L_j` has a closed form through the dual activation
(Definition 1, Daniely et al. 2016).

**Dual activation of** :math:`\sigma = \sqrt2\,\mathrm{ReLU}` (derived here; tested against numerical
integration in ``tests/test_awasthi_relu.py``). For (X, Y) standard bivariate normal with correlation ρ,
:math:`E[\mathrm{ReLU}(X)\mathrm{ReLU}(Y)] = \frac1{2\pi}(\sqrt{1-\rho^2} + (\pi - \arccos\rho)\rho)`, so

.. math::  \hat\sigma(\rho) = \frac{\sqrt{1-\rho^2} + (\pi - \arccos\rho)\,\rho}{\pi}, \qquad
           \hat\sigma'(\rho) = \widehat{\sigma_{\rm step}}(\rho) = 1 - \frac{\arccos\rho}{\pi},

:math:`\hat\sigma(1) = 1`, :math:`\hat\sigma(0) = 1/\pi`, :math:`\hat\sigma \ge 0` on [−1, 1].

**Any graph.** Let :math:`D_i = d_i + 1` and :math:`d_{ik} = |N[i] \cap N[k]| = ((A+I)^2)_{ik}` the number of
common messages of :math:`\bar x_i, \bar x_k` (:math:`d_{ii} = D_i`). Then :math:`a^\top \bar x_i` and
:math:`b^\top \bar x_k` are jointly Gaussian with variances :math:`\|a\|^2 D_i`, :math:`\|b\|^2 D_k` and
covariance :math:`a^\top b\, d_{ik}`, and σ is positively homogeneous, so

.. math::  E[\sigma(a^\top\bar x_i)\sigma(b^\top\bar x_k)] = \|a\|\|b\|\, s_{ik}\,
           \hat\sigma\big(c_{ik} \cos\theta_{ab}\big), \quad s_{ik} = \sqrt{D_i D_k},\ c_{ik} = d_{ik}/s_{ik}.

Writing :math:`G(\rho) = \sum_{i,k} s_{ik}\hat\sigma(c_{ik}\rho)`, with :math:`m = \|w^*\|`, :math:`\ell = \|w\|`,
:math:`\rho = \cos\angle(w, w^*)`,

.. math::  L_j(w) = \tfrac12(\ell^2 + m^2)\,G(1) - \ell m\, G(\rho)
                  = \tfrac12(\ell - m)^2 G(1) + \ell m\,\big(G(1) - G(\rho)\big).

On a d-regular graph :math:`s_{ik} = d+1` and this is eq. (12). :math:`G(1) = A'`,
:math:`G(\alpha_t/\ell_t) = B'_t` and :math:`G'(\alpha_t/\ell_t) = C'_t` are App. B's unequal-degree
quantities ("replace (d+1) by :math:`\sqrt{(d_i+1)(d_j+1)}`"); on a d-regular graph they are (d+1)·A,
(d+1)·B_t, (d+1)·C_t of §3.2.

**Cost.** Pairs with :math:`d_{ik} = 0` contribute :math:`s_{ik}\hat\sigma(0) = s_{ik}/\pi`; their total weight is
:math:`(\sum_i \sqrt{D_i})^2 - \sum_{d_{ik}>0} s_{ik}`. The remaining pairs are the non-zeros of
:math:`(A+I)^2` (the two-hop structure), and :math:`s_{ik}\hat\sigma(c_{ik}\rho)` depends on the pair only
through the integers :math:`(d_{ik}, D_iD_k)`. :class:`DualKernel` groups the pairs by that key once
(O(nnz((A+I)²))), after which G, G′ cost O(#keys) — at most d + 2 keys on a d-regular graph. No n × n
dense matrix is built.

**Precision.** Near the optimum :math:`G(1) - G(\rho)` is a difference of numbers of size ~n²d that
nearly cancel; :func:`dual_relu_gap` evaluates :math:`\hat\sigma(c) - \hat\sigma(c\rho)` from
:math:`\delta = 1 - \rho = \frac12\|u - u^*\|^2` through angle differences, so the loss keeps full relative
precision down to ~1e-300 instead of flooring at ~1e-11 (which would hide the convergence rate).

**Hessian** (Lemma 2 = Lemma 7): in the plane coordinates (α, β) of w along w* and w⊥,
:math:`\nabla^2 L_j = A'I - (mK(\rho)/\ell)\,tt^\top` with :math:`K \ge 0`, so :math:`\lambda_{\max} = A'`
everywhere (:func:`relu_hessian_2d`).

Tensors are batched: a leading batch dimension B (configurations × seeds), rows j = 1..h, inputs r.

* :mod:`.dual` — σ̂, σ̂_step, the stable gap and curvature terms, :class:`DualKernel` (G, A′, B′_t, C′_t, K);
* :mod:`.loss` — the closed-form loss and gradient (:func:`relu_population_grad`), the Monte Carlo check;
* :mod:`.hessian` — the (α, β) plane and the Hessian of Lemma 2 (:func:`relu_hessian_2d`).
"""

from gnndyn.models.population_relu.dual import (
    PI, DualKernel, dual_curvature, dual_relu, dual_relu_gap, dual_step,
)
from gnndyn.models.population_relu.hessian import (
    ReluHessian2D, alpha_beta, orthogonal_direction, relu_hessian_2d, relu_hessian_alpha_beta, relu_hessian_plane,
    sym2_eigvals,
)
from gnndyn.models.population_relu.loss import (
    ReluPopulationState, RowGeometry, closed_neighbourhood, relu_monte_carlo_loss, relu_population_grad,
    relu_population_loss, relu_population_loss_rows, row_geometry,
)

__all__ = [
    "PI", "dual_relu", "dual_step", "dual_relu_gap", "DualKernel", "RowGeometry", "row_geometry",
    "relu_population_loss_rows", "relu_population_loss", "ReluPopulationState", "relu_population_grad",
    "dual_curvature", "ReluHessian2D", "sym2_eigvals", "relu_hessian_2d", "relu_hessian_plane",
    "relu_hessian_alpha_beta",
    "alpha_beta", "orthogonal_direction", "closed_neighbourhood", "relu_monte_carlo_loss",
]
