"""The propagation operators of the papers, built sparse from a :class:`~gnndyn.data.Graph`.

===================== ======================================== =========== ==========
name                  S                                        symmetric   stochastic
===================== ======================================== =========== ==========
``gossip``            I − (D − A)/d_max  (Keriven §2)          yes         yes
``gcn``               D̂^{-1/2}(A + I)D̂^{-1/2}, D̂ = D + I       yes         no
``gin``               A + (1 + ε) I   (Xu et al. §3, ε = 0)    yes         no
``random-walk``       D⁻¹A                                     no          yes
``adjacency``         A                                        yes         no
``laplacian``         D − A                                    yes         no
``normalized-laplacian`` I − D^{-1/2} A D^{-1/2}               yes         no
``identity``          I  (the MLP of Keriven Prop. 2)          yes         yes
``sage``              D̂⁻¹(I + A)  (mean with self-loop)          no          yes
``pagerank``          (I + A)D̂⁻¹  (column-stochastic)           no          no
===================== ======================================== =========== ==========

Patel, Savostianov & Schaub (arXiv 2501.14440, §2 and §6.1.1) name five shift operators; they are
aliases that build the same matrix under the paper's name: ``adj`` = ``adjacency`` (A), ``sl-adj`` =
``gin`` with ε = 0 (A + I), ``nor-sl-adj`` = ``gcn`` (D̂^{-1/2}(A + I)D̂^{-1/2}), ``lap`` = ``laplacian``
(D − A), ``nor-lap`` = ``normalized-laplacian`` (I − D^{-1/2}AD^{-1/2}). ``sage`` and ``pagerank`` are
the other two aggregations of their §2. gnndyn propagates S X with nodes as rows; the paper writes
X S with nodes as columns, so its S is gnndyn's Sᵀ: the paper's (I + A)D̂⁻¹ is gnndyn's ``sage``
and its D̂⁻¹(I + A) is gnndyn's ``pagerank`` (the symmetric ones are the same either way).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from gnndyn.data.graph import Graph
from gnndyn.errors import GnndynError, resolve
from gnndyn.operators.base import DirichletForm, Operator, csr_from_scipy


def _col(v: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(v, dtype=np.float64)).unsqueeze(1)


def _coo(n: int, ei: torch.Tensor, w: torch.Tensor) -> sp.csr_matrix:
    return sp.csr_matrix((w.double().numpy(), (ei[0].numpy(), ei[1].numpy())), shape=(n, n))


def gossip(graph: Graph, d_max: float | None = None) -> Operator:
    r"""Gossip matrix :math:`P = I - (D - A)/d_{\max}` (Keriven §2, Assumption 1).

    Symmetric and bi-stochastic; non-negative when :math:`d_{\max} \ge` the maximum degree (the
    default is the maximum degree, as in the paper's Cora/CiteSeer values). Isolated nodes get
    :math:`P_{ii} = 1`.
    """
    deg = graph.degrees().astype(np.float64)
    max_deg = float(deg.max()) if deg.size else 0.0
    if d_max is None:
        if max_deg == 0:
            raise GnndynError("gossip: the graph has no edges, so d_max = max degree = 0; give d_max > 0.")
        d_max = max_deg
    if d_max < max_deg:
        raise GnndynError(
            f"gossip: d_max={d_max} is below the maximum degree {max_deg:g}, which would make P negative "
            f"(Keriven Assumption 1 needs P ≥ 0). Use d_max ≥ {max_deg:g} or leave it unset."
        )
    n = graph.num_nodes
    A = graph.adjacency()
    P = sp.identity(n, format="csr") - (sp.diags(deg) - A) / float(d_max)
    return Operator("gossip", csr_from_scipy(P), True, True, perron=(1.0, np.full(n, 1.0 / np.sqrt(n))),
                    params={"d_max": float(d_max)}, dirichlet=DirichletForm(float(d_max), 1.0))


def gcn(graph: Graph) -> Operator:
    r"""GCN operator :math:`\hat D^{-1/2}(A + I)\hat D^{-1/2}` (Kipf & Welling; Xu et al. §3).

    Symmetric, eigenvalues in (−1, 1], top eigenvalue 1 with eigenvector ∝ :math:`\hat D^{1/2}1`
    on a connected graph; not stochastic. Built with PyG's ``gcn_norm``.
    """
    from torch_geometric.nn.conv.gcn_conv import gcn_norm  # PyG loads in seconds: only when used

    n = graph.num_nodes
    ei, w = gcn_norm(graph.edge_index, None, n, add_self_loops=True, dtype=torch.float64)
    v = np.sqrt(graph.degrees().astype(np.float64) + 1.0)
    # L = D − A = D̂^{1/2}(I − S)D̂^{1/2}
    form = DirichletForm(1.0, 1.0, _col(v), _col(v))
    return Operator("gcn", csr_from_scipy(_coo(n, ei, w)), True, False, perron=(1.0, v / np.linalg.norm(v)),
                    dirichlet=form)


def gin(graph: Graph, eps: float = 0.0) -> Operator:
    r"""GIN aggregation :math:`A + (1+\epsilon) I` (Xu et al. 2019; ε = 0 in Xu et al. 2021, §3)."""
    n = graph.num_nodes
    M = graph.adjacency() + (1.0 + eps) * sp.identity(n, format="csr")
    form = DirichletForm(1.0, _col(graph.degrees().astype(np.float64) + 1.0 + eps))  # L = (D + (1+ε)I) − S
    return Operator("gin", csr_from_scipy(M), True, False, params={"eps": eps}, dirichlet=form)


def random_walk(graph: Graph) -> Operator:
    r"""Random-walk matrix :math:`D^{-1}A`: row-stochastic, not symmetric (similar to
    :math:`D^{-1/2}AD^{-1/2}`, whose spectrum it shares). Refuses isolated nodes (D⁻¹ undefined)."""
    deg = graph.degrees().astype(np.float64)
    if (deg == 0).any():
        iso = np.flatnonzero(deg == 0)
        raise GnndynError(
            f"random-walk: D⁻¹A is undefined at {iso.size} isolated node(s) (first: {iso[:5].tolist()}). "
            "Keep the largest connected component (--lcc) or use the gossip or gcn operator."
        )
    A = graph.adjacency()
    M = sp.diags(1.0 / deg) @ A
    Dm = sp.diags(deg ** -0.5)
    sym = (Dm @ A @ Dm).tocsr()
    v = np.sqrt(deg)
    return Operator("random-walk", csr_from_scipy(M), False, True, perron=(1.0, v / np.linalg.norm(v)), similarity=sym,
                    dirichlet=DirichletForm(1.0, 1.0, _col(deg)))  # L = D(I − S)


def adjacency(graph: Graph) -> Operator:
    """Adjacency matrix A (symmetric, not normalized)."""
    form = DirichletForm(1.0, _col(graph.degrees().astype(np.float64)))  # L = D − S
    return Operator("adjacency", csr_from_scipy(graph.adjacency()), True, False, dirichlet=form)


def laplacian(graph: Graph) -> Operator:
    """Combinatorial Laplacian D − A (PyG ``get_laplacian``)."""
    from torch_geometric.utils import get_laplacian

    ei, w = get_laplacian(graph.edge_index, normalization=None, dtype=torch.float64, num_nodes=graph.num_nodes)
    return Operator("laplacian", csr_from_scipy(_coo(graph.num_nodes, ei, w)), True, False,
                    dirichlet=DirichletForm(-1.0, 0.0))  # L = S


def normalized_laplacian(graph: Graph) -> Operator:
    r"""Normalized Laplacian :math:`I - D^{-1/2}AD^{-1/2}` (PyG ``get_laplacian(normalization='sym')``;
    an isolated node has a diagonal entry 1 and nothing else)."""
    from torch_geometric.utils import get_laplacian

    n = graph.num_nodes
    ei, w = get_laplacian(graph.edge_index, normalization="sym", dtype=torch.float64, num_nodes=n)
    M = _coo(n, ei, w)
    deg = graph.degrees()
    iso = np.flatnonzero(deg == 0)
    if iso.size:  # PyG leaves isolated diagonals at 1 − 0 = 1 only if present; make it explicit
        M = M.tolil()
        M[iso, iso] = 1.0
        M = M.tocsr()
    r = _col(np.sqrt(deg.astype(np.float64)))  # L = D^{1/2} S D^{1/2}
    return Operator("normalized-laplacian", csr_from_scipy(M), True, False, dirichlet=DirichletForm(-1.0, 0.0, r, r))


def identity(graph: Graph) -> Operator:
    """Identity I: with it the deep GNN is an MLP (Keriven Prop. 2)."""
    n = graph.num_nodes
    return Operator("identity", csr_from_scipy(sp.identity(n, format="csr")), True, True,
                    perron=(1.0, np.full(n, 1.0 / np.sqrt(n))), is_identity=True)


def _self_loop_degrees(graph: Graph) -> np.ndarray:
    return graph.degrees().astype(np.float64) + 1.0


def sage(graph: Graph) -> Operator:
    r"""Mean aggregation with a self loop :math:`\hat D^{-1}(I + A)`, :math:`\hat D = D + I` (GraphSAGE-like;
    Patel et al. §2). Row-stochastic, not symmetric; similar to the GCN operator
    :math:`\hat D^{-1/2}(I + A)\hat D^{-1/2}` (same spectrum, top eigenvalue 1 with right eigenvector 1)."""
    d = _self_loop_degrees(graph)
    M = graph.adjacency() + sp.identity(graph.num_nodes, format="csr")
    v = np.sqrt(d)
    return Operator("sage", csr_from_scipy(sp.diags(1.0 / d) @ M), False, True,
                    perron=(1.0, v / np.linalg.norm(v)), similarity=gcn(graph).scipy(),
                    dirichlet=DirichletForm(1.0, 1.0, _col(d)))  # L = D̂ − (I + A) = D̂(I − S)


def pagerank(graph: Graph) -> Operator:
    r"""PageRank-type aggregation :math:`(I + A)\hat D^{-1}`, :math:`\hat D = D + I` (Patel et al. §2).
    Column-stochastic (:math:`1^\top S = 1^\top`), so not (row-)stochastic, and not symmetric; the
    transpose of ``sage`` and similar to the GCN operator (same spectrum)."""
    d = _self_loop_degrees(graph)
    M = graph.adjacency() + sp.identity(graph.num_nodes, format="csr")
    v = np.sqrt(d)
    return Operator("pagerank", csr_from_scipy(M @ sp.diags(1.0 / d)), False, False,
                    perron=(1.0, v / np.linalg.norm(v)), similarity=gcn(graph).scipy(),
                    dirichlet=DirichletForm(1.0, 1.0, None, _col(d)))  # L = (I − S)D̂


def _alias(paper_name: str, fn: Callable[[Graph], Operator], what: str) -> Callable[[Graph], Operator]:
    def build(graph: Graph) -> Operator:
        op = fn(graph)
        op.name = paper_name
        op.params = {**op.params, "alias_of": fn.__name__.replace("_", "-")}
        return op

    build.__name__ = paper_name.replace("-", "_")
    build.__doc__ = f"{what} under Patel et al.'s name (§6.1.1); the same matrix as ``{fn.__name__.replace('_', '-')}``."
    return build


OPERATORS: dict[str, Callable[..., Operator]] = {
    "gossip": gossip,
    "gcn": gcn,
    "gin": gin,
    "random-walk": random_walk,
    "adjacency": adjacency,
    "laplacian": laplacian,
    "normalized-laplacian": normalized_laplacian,
    "identity": identity,
    "sage": sage,
    "pagerank": pagerank,
    "adj": _alias("adj", adjacency, "A (Adj)"),
    "sl-adj": _alias("sl-adj", gin, "A + I (S-L Adj)"),
    "nor-sl-adj": _alias("nor-sl-adj", gcn, "D̂^{-1/2}(A + I)D̂^{-1/2} (Nor. S-L Adj)"),
    "lap": _alias("lap", laplacian, "D − A (L)"),
    "nor-lap": _alias("nor-lap", normalized_laplacian, "I − D^{-1/2}AD^{-1/2} (Nor. L)"),
}


def build_operator(name: str, graph: Graph, **params: Any) -> Operator:
    """Build operator ``name`` on ``graph``; an unknown name lists the valid ones."""
    fn = resolve("operator", name, OPERATORS)
    try:
        return fn(graph, **params)
    except TypeError as exc:
        raise GnndynError(f"operator {name!r} got unexpected parameters {sorted(params)}: {exc}") from exc
