"""Graph generators: SBM, CSBM, Erdős–Rényi, random d-regular, the k-NN ring, Barabási–Albert.

Edges of a block pair are sampled exactly as independent Bernoulli(p) trials without visiting every
pair: the number of edges is drawn from Binomial(N, p) (N the number of node pairs of the block pair)
and that many distinct pair indices are drawn uniformly (NumPy's hash-set sampler), which is the same
distribution. Cost O(n + m) time and memory, so 10⁶ nodes and 10⁷ edges take seconds.

The four graph families of Patel, Savostianov & Schaub (arXiv 2501.14440, §6.1) are G(n, p)
(:func:`erdos_renyi` with ``p``), the k-NN ring K_k(n) (:func:`knn_ring`), the two-block
SBM(n₁, n₂, p, q) (:func:`sbm` with ``p_in``/``p_out``) and BA(n, m) (:func:`barabasi_albert`).
``feature_dim > 0`` adds i.i.d. N(0, 1) node features (the paper's X_ij ~ N(0, 1)), drawn from a
stream of ``seed`` separate from the graph's, so adding features never changes the edges.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Iterator
from contextlib import contextmanager

import networkx as nx
import numpy as np
import torch

from gnndyn.data.graph import Graph, canonical_edge_index
from gnndyn.errors import GnndynError


_DRY = contextvars.ContextVar("gnndyn_generator_dry_run", default=False)


class MissingParameterError(GnndynError):
    """A generator was given too few parameters to build a graph (an experiment may still fill them in)."""


class Validated(Exception):
    """Raised in a dry run (:func:`dry_run`) where a generator has checked its parameters and would start sampling."""


@contextmanager
def dry_run() -> Iterator[None]:
    """Within the block, generators check their parameters and raise :class:`Validated` instead of sampling."""
    tok = _DRY.set(True)
    try:
        yield
    finally:
        _DRY.reset(tok)


def _validated() -> None:
    if _DRY.get():
        raise Validated()


def _check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise GnndynError(f"{name} must be a finite number; got {value}.")
    if value < 0 or (value == 0 and not allow_zero):
        rel = "≥ 0" if allow_zero else "> 0"
        raise GnndynError(f"{name} must be {rel}; got {value}.")


def _check_prob(name: str, p: float) -> None:
    if not (0.0 <= p <= 1.0) or not math.isfinite(p):
        raise GnndynError(f"{name} is a probability and must lie in [0, 1]; got {p}.")


def triu_pairs(k: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Map linear indices k ∈ [0, n(n−1)/2) of the strict upper triangle (row-major) to pairs (i, j), i < j."""
    k = np.asarray(k, dtype=np.int64)
    b = 2 * n - 1
    i = np.floor((b - np.sqrt(np.maximum(b * b - 8.0 * k, 0.0))) / 2.0).astype(np.int64)
    start = i * (2 * n - i - 1) // 2  # first index of row i
    # fix rounding of the square root (at most one step either way)
    too_far = start > k
    i[too_far] -= 1
    start = i * (2 * n - i - 1) // 2
    nxt = (i + 1) * (2 * n - i - 2) // 2
    short = nxt <= k
    i[short] += 1
    start = i * (2 * n - i - 1) // 2
    j = k - start + i + 1
    return i, j


def _sample_block(rng: np.random.Generator, na: int, nb: int, p: float, same: bool) -> tuple[np.ndarray, np.ndarray]:
    """Bernoulli(p) edges between two node sets of sizes na, nb (or inside one set when ``same``)."""
    n_pairs = na * (na - 1) // 2 if same else na * nb
    if n_pairs == 0 or p == 0.0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    k = int(rng.binomial(n_pairs, p))
    if k == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    idx = rng.choice(np.int64(n_pairs), size=k, replace=False) if k < n_pairs else np.arange(n_pairs, dtype=np.int64)
    if same:
        return triu_pairs(idx, na)
    return idx // nb, idx % nb


def balanced_blocks(n: int, classes: int) -> np.ndarray:
    """Class label of each node for ``classes`` balanced blocks (sizes differ by at most one)."""
    return np.repeat(np.arange(classes), [n // classes + (c < n % classes) for c in range(classes)])


def gaussian_features(n: int, feature_dim: int, seed: int) -> torch.Tensor | None:
    """i.i.d. N(0, 1) features, ``(n, feature_dim)`` float64, from the stream ``SeedSequence([seed, 1])``
    (independent of the graph's stream); ``None`` when ``feature_dim == 0``."""
    if feature_dim < 0:
        raise GnndynError(f"feature_dim must be ≥ 0 (0 means no features); got {feature_dim}.")
    if feature_dim == 0:
        return None
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    return torch.from_numpy(rng.normal(size=(n, int(feature_dim))))


def sbm(
    block_sizes: list[int] | np.ndarray,
    probs: np.ndarray | list[list[float]] | None = None,
    *,
    p_in: float | None = None,
    p_out: float | None = None,
    feature_dim: int = 0,
    seed: int = 0,
    name: str = "sbm",
) -> Graph:
    """Stochastic block model: nodes in consecutive blocks; edge (i, j) present with probability
    ``probs[b(i), b(j)]`` independently. Labels ``y`` are the block indices.

    Instead of the matrix ``probs`` one may give ``p_in`` (diagonal) and ``p_out`` (off-diagonal):
    Patel et al.'s SBM(n₁, n₂, p, q) with P = [[p, q], [q, p]] (§6.1, Fig. 6) is
    ``sbm([66, 134], p_in=0.15, p_out=q)``. ``feature_dim > 0`` adds N(0, 1) features."""
    sizes = np.asarray(block_sizes, dtype=np.int64)
    if probs is None:
        if p_in is None or p_out is None:
            raise GnndynError("sbm needs either probs (a blocks × blocks matrix) or both p_in and p_out.")
        if sizes.ndim != 1 or sizes.size == 0:
            raise GnndynError(f"block_sizes must be a non-empty list of non-negative sizes; got {block_sizes}.")
        probs = np.full((sizes.size, sizes.size), float(p_out))
        np.fill_diagonal(probs, float(p_in))
    elif p_in is not None or p_out is not None:
        raise GnndynError("sbm: give either probs or p_in/p_out, not both.")
    P = np.asarray(probs, dtype=np.float64)
    if sizes.ndim != 1 or sizes.size == 0 or (sizes < 0).any():
        raise GnndynError(f"block_sizes must be a non-empty list of non-negative sizes; got {block_sizes}.")
    if P.shape != (sizes.size, sizes.size):
        raise GnndynError(f"probs must be a {sizes.size}×{sizes.size} matrix to match block_sizes; got shape {P.shape}.")
    if not np.allclose(P, P.T):
        raise GnndynError("probs must be symmetric for an undirected SBM.")
    for p in P.ravel():
        _check_prob("an SBM edge probability", float(p))
    _validated()
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    rows, cols = [], []
    for a in range(sizes.size):
        for b in range(a, sizes.size):
            i, j = _sample_block(rng, int(sizes[a]), int(sizes[b]), float(P[a, b]), same=(a == b))
            rows.append(i + offsets[a])
            cols.append(j + offsets[b])
    n = int(offsets[-1])
    ei = torch.from_numpy(np.stack([np.concatenate(rows), np.concatenate(cols)]))
    y = torch.from_numpy(np.repeat(np.arange(sizes.size), sizes))
    meta = {"generator": name, "block_sizes": sizes.tolist(), "probs": P.tolist(), "seed": seed}
    if feature_dim:
        meta["feature_dim"] = int(feature_dim)
    return Graph(
        edge_index=canonical_edge_index(ei, n),
        num_nodes=n,
        x=gaussian_features(n, feature_dim, seed),
        y=y,
        name=name,
        meta=meta,
    )


def erdos_renyi(
    n: int, p: float | None = None, *, avg_degree: float | None = None, feature_dim: int = 0, seed: int = 0
) -> Graph:
    """Erdős–Rényi G(n, p); give either ``p`` (as Patel et al. do: G(200, 0.03)...) or ``avg_degree``
    (then p = avg_degree / (n − 1)). ``feature_dim > 0`` adds N(0, 1) features."""
    _check_positive("n", n)
    if p is None and avg_degree is None:
        raise MissingParameterError("erdos_renyi needs exactly one of p or avg_degree; got neither.")
    if p is not None and avg_degree is not None:
        raise GnndynError("erdos_renyi needs exactly one of p or avg_degree; got both.")
    if p is None:
        p = float(avg_degree) / max(n - 1, 1)
    _check_prob("p", p)
    g = sbm([n], [[p]], feature_dim=feature_dim, seed=seed, name="erdos-renyi")
    meta = {"generator": "erdos-renyi", "n": n, "p": p, "seed": seed}
    if feature_dim:
        meta["feature_dim"] = int(feature_dim)
    return g.with_(y=None, meta=meta)


def random_regular(n: int, degree: int, *, seed: int = 0) -> Graph:
    """Uniform random ``degree``-regular graph on n nodes (NetworkX pairing model; needs n·degree even)."""
    _check_positive("n", n)
    if degree < 0 or degree >= n:
        raise GnndynError(f"degree must satisfy 0 ≤ degree < n={n}; got {degree}.")
    if (n * degree) % 2:
        raise GnndynError(f"a {degree}-regular graph on {n} nodes does not exist: n·degree must be even.")
    _validated()
    G = nx.random_regular_graph(degree, n, seed=seed)
    edges = np.array(list(G.edges()), dtype=np.int64).reshape(-1, 2).T
    return Graph.from_edges(edges, n, name="random-regular", meta={"generator": "random-regular", "n": n, "degree": degree, "seed": seed})


def knn_ring(n: int, k: int, *, feature_dim: int = 0, seed: int = 0) -> Graph:
    r"""The k-nearest-neighbour ring :math:`K_k(n)` (Patel et al., §6.1): n nodes equidistant on the unit
    circle, node i at angle :math:`2\pi i/n`, each joined to its k nearest nodes, i.e.
    :math:`i \sim i \pm s \bmod n` for :math:`s = 1, \dots, k/2`.

    Deterministic (``seed`` only drives the features); k must be even with 0 ≤ k ≤ n − 1, so every
    node has degree exactly k and there are nk/2 edges (k = n − 1 is the complete graph).
    """
    _check_positive("n", n)
    if k < 0 or k % 2 or k > n - 1:
        raise GnndynError(
            f"knn_ring needs an even k with 0 ≤ k ≤ n − 1 = {n - 1} (each node has k/2 neighbours on each "
            f"side); got k={k}."
        )
    _validated()
    half = k // 2
    src = np.repeat(np.arange(n, dtype=np.int64), half)
    dst = (src + np.tile(np.arange(1, half + 1, dtype=np.int64), n)) % n
    meta = {"generator": "knn-ring", "n": n, "k": k}
    if feature_dim:
        meta.update(feature_dim=int(feature_dim), seed=seed)
    return Graph.from_edges(np.stack([src, dst]), n, x=gaussian_features(n, feature_dim, seed),
                            name="knn-ring", meta=meta)


def barabasi_albert(n: int, m: int, *, feature_dim: int = 0, seed: int = 0) -> Graph:
    r"""Barabási–Albert preferential attachment BA(n, m) (Barabási & Albert 1999; Patel et al., §6.1).

    Starts from the star on nodes 0..m (centre 0); each new node v = m + 1, …, n − 1 joins m distinct
    earlier nodes, each drawn with probability proportional to its current degree (uniform draws from
    the list holding every node once per unit of degree, duplicates redrawn: NetworkX's
    ``barabasi_albert_graph`` scheme). Hence exactly m(n − m) edges, mean degree 2m(n − m)/n ≈ 2m, a
    connected graph, and for large n the degree law :math:`p_k = 2m(m+1)/(k(k+1)(k+2))`, k ≥ m
    (Bollobás, Riordan, Spencer & Tusnády 2001), e.g. a fraction 2/(m + 2) of nodes of degree m.
    Seeded; O(n·m) time and memory. Needs 1 ≤ m < n.
    """
    _check_positive("n", n)
    if m < 1 or m >= n:
        raise GnndynError(f"barabasi_albert needs 1 ≤ m < n={n} (m edges per new node); got m={m}.")
    _validated()
    rng = np.random.default_rng(seed)
    n_edges = m * (n - m)
    src = np.empty(n_edges, dtype=np.int64)
    dst = np.empty(n_edges, dtype=np.int64)
    src[:m], dst[:m] = 0, np.arange(1, m + 1)
    rep = np.empty(2 * n_edges, dtype=np.int64)  # every node once per unit of degree
    rep[:m], rep[m:2 * m] = 0, np.arange(1, m + 1)
    filled, e = 2 * m, m
    for v in range(m + 1, n):
        chosen: dict[int, None] = {}  # insertion-ordered set
        while len(chosen) < m:
            for t in rep[rng.integers(0, filled, size=m - len(chosen))].tolist():
                chosen.setdefault(t)  # a batch of m − |chosen| draws can add at most that many
        targets = np.fromiter(chosen, dtype=np.int64, count=m)
        src[e:e + m], dst[e:e + m] = v, targets
        rep[filled:filled + m] = targets
        rep[filled + m:filled + 2 * m] = v
        filled, e = filled + 2 * m, e + m
    meta = {"generator": "barabasi-albert", "n": n, "m": m, "seed": seed}
    if feature_dim:
        meta["feature_dim"] = int(feature_dim)
    return Graph.from_edges(np.stack([src, dst]), n, x=gaussian_features(n, feature_dim, seed),
                            name="barabasi-albert", meta=meta)


def csbm(
    n: int = 1000,
    classes: int = 2,
    *,
    p_in: float | None = None,
    p_out: float | None = None,
    avg_degree: float | None = None,
    lam: float | None = None,
    feature_dim: int = 16,
    mu: float | None = None,
    feature_sep: float | None = None,
    noise: float = 1.0,
    seed: int = 0,
) -> Graph:
    r"""Contextual stochastic block model (Deshpande, Montanari, Mossel & Sen 2018; Keriven's ref. [6]).

    ``classes`` balanced blocks; an edge inside a class has probability ``p_in``, between classes
    ``p_out``. Node features are Gaussian with a class-dependent mean. Two parametrizations:

    * natural: ``p_in``, ``p_out`` and ``feature_sep`` — class means :math:`m_c = (\mathrm{sep}/\sqrt2)\,e_c`
      (pairwise distance ``sep``), features :math:`x_i = m_{y_i} + \mathrm{noise}\cdot z_i`, :math:`z_i\sim N(0, I)`;
    * Deshpande's: average degree :math:`d`, graph signal :math:`\lambda` and feature signal :math:`\mu`.
      With :math:`c_\mathrm{in} = n p_\mathrm{in}`, :math:`c_\mathrm{out} = n p_\mathrm{out}` and C classes,
      :math:`d = (c_\mathrm{in} + (C-1) c_\mathrm{out})/C` and :math:`\lambda = (c_\mathrm{in}-c_\mathrm{out})/(C\sqrt d)`
      (for C = 2: :math:`c_\mathrm{in/out} = d \pm \lambda\sqrt d`, Deshpande et al. eq. (2)). Features
      :math:`x_i = \sqrt{\mu/n}\, v_{y_i} + z_i/\sqrt p` with :math:`u \sim N(0, I_p/p)`, :math:`v = \pm u` for
      C = 2 (their eq. (3)) and independent :math:`u_c \sim N(0, I_p/p)` for C > 2; p = ``feature_dim``.

    Mixing the two parametrizations is an error. Labels are the classes; deterministic under ``seed``.
    """
    _check_positive("n", n)
    if classes < 2:
        raise GnndynError(f"a CSBM needs classes ≥ 2; got {classes}.")
    if n < classes:
        raise GnndynError(f"n={n} nodes cannot fill {classes} classes.")
    _check_positive("feature_dim", feature_dim)
    natural = p_in is not None or p_out is not None or feature_sep is not None
    deshpande = avg_degree is not None or lam is not None or mu is not None
    if natural and deshpande:
        raise GnndynError(
            "csbm: give either the natural parameters (p_in, p_out, feature_sep) or Deshpande's "
            "(avg_degree, lam, mu), not a mix."
        )
    if not natural and not deshpande:
        avg_degree, lam, mu = 10.0, 2.0, 4.0
        deshpande = True
    C = classes
    if deshpande:
        d = 10.0 if avg_degree is None else float(avg_degree)
        lam_ = 2.0 if lam is None else float(lam)
        mu_ = 4.0 if mu is None else float(mu)
        _check_positive("avg_degree", d)
        c_in = d + (C - 1) * lam_ * math.sqrt(d)
        c_out = d - lam_ * math.sqrt(d)
        p_in_, p_out_ = c_in / n, c_out / n
        if not (0 <= p_out_ <= 1 and 0 <= p_in_ <= 1):
            raise GnndynError(
                f"csbm: avg_degree={d}, lam={lam_} give p_in={p_in_:.4g}, p_out={p_out_:.4g}; both must lie "
                f"in [0, 1]. Use |lam| ≤ √avg_degree/(C−1) and avg_degree ≤ n."
            )
    else:
        p_in_ = 0.05 if p_in is None else float(p_in)
        p_out_ = 0.01 if p_out is None else float(p_out)
        _check_prob("p_in", p_in_)
        _check_prob("p_out", p_out_)
    if not deshpande and feature_dim < C:
        raise GnndynError(f"csbm: feature_dim={feature_dim} must be ≥ classes={C} for the natural parametrization.")
    if not (math.isfinite(noise) and noise >= 0):
        raise GnndynError(f"csbm: noise must be a finite number ≥ 0; got {noise}.")
    sizes = [n // C + (c < n % C) for c in range(C)]
    P = np.full((C, C), p_out_)
    np.fill_diagonal(P, p_in_)
    g = sbm(sizes, P, seed=seed, name="csbm")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    y = g.y.numpy()
    if deshpande:
        p = feature_dim
        if C == 2:
            u = rng.normal(0.0, 1.0 / math.sqrt(p), size=p)
            means = np.stack([u, -u])
        else:
            means = rng.normal(0.0, 1.0 / math.sqrt(p), size=(C, p))
        x = math.sqrt(mu_ / n) * means[y] + rng.normal(size=(n, p)) / math.sqrt(p)
        params = {"avg_degree": d, "lam": lam_, "mu": mu_}
    else:
        sep = 2.0 if feature_sep is None else float(feature_sep)
        if feature_dim < C:
            raise GnndynError(f"csbm: feature_dim={feature_dim} must be ≥ classes={C} for the natural parametrization.")
        means = np.zeros((C, feature_dim))
        means[np.arange(C), np.arange(C)] = sep / math.sqrt(2.0)
        x = means[y] + noise * rng.normal(size=(n, feature_dim))
        params = {"feature_sep": sep, "noise": noise}
    meta = {
        "generator": "csbm",
        "n": n,
        "classes": C,
        "p_in": p_in_,
        "p_out": p_out_,
        "feature_dim": feature_dim,
        "seed": seed,
        "class_means": means.tolist() if means.size <= 4096 else None,
        **params,
    }
    return g.with_(x=torch.from_numpy(x), meta=meta)
