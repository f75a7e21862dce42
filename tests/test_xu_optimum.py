"""L*_{1:H} of a multiscale linear GNN whose hidden widths are too narrow for least squares
(Xu et al. 2021, Def. 2–3): the variable-projection search against brute-force training of the model
itself from many random starts, and the bracket lower ≤ L* ≤ upper."""

from __future__ import annotations

import pytest
import torch

from gnndyn.data import csbm
from gnndyn.models.linear_gnn import XuGNN, XuObjective, make_xu_data
from gnndyn.operators import build_operator
from gnndyn.theory import xu


@pytest.fixture(scope="module")
def narrow():
    g = csbm(60, 3, p_in=0.25, p_out=0.05, feature_dim=5, feature_sep=2.0, seed=5)
    op = build_operator("gcn", g)
    data = make_xu_data(g.x, op, torch.arange(0, 60, 2))  # n̄ = 30 > (H+1)·m_x = 15: L* > 0
    obj = XuObjective("squared", g.y[data.nodes], 3)
    return data, obj


def _brute(fit, data, obj, widths, starts: int = 10) -> float:
    """min of the training loss of the multiscale model itself (all weights), L-BFGS from random starts."""
    return min(fit(XuGNN(data.in_dim, widths, 3, multiscale=True, seed=100 + s), data, obj, max_iter=3000,
                   tolerance_grad=1e-13, tolerance_change=1e-16, history_size=50, line_search_fn="strong_wolfe")
               for s in range(starts))


@pytest.mark.parametrize("widths", [[1, 1], [2, 1], [1, 2, 1]])
def test_nested_rank_upper_bound_matches_brute_force(narrow, widths, fit_lbfgs):
    data, obj = narrow
    H = len(widths)
    blocks = data.blocks(H)
    Y = obj.target().numpy()
    opt = xu.global_optimum(blocks, Y, widths, multiscale=True)
    assert opt.case.startswith("nested-rank")
    assert opt.lower <= opt.upper * (1 + 1e-12)
    # the constraint is active here: the relaxation is strictly below every feasible value
    assert opt.upper > opt.lower * (1 + 1e-3)
    # the search is no worse than the old bound (best single read-out) …
    assert opt.upper <= opt.search["single_readout_upper"] * (1 + 1e-12)
    # … and reaches what training the model itself reaches from many starts (it never goes below a true optimum)
    brute = _brute(fit_lbfgs, data, obj, widths)
    assert brute >= opt.lower * (1 - 1e-9)
    assert opt.upper == pytest.approx(brute, rel=1e-6)


def test_nested_rank_search_value_is_attained(narrow, fit_lbfgs):
    """The value returned is a loss of some model with the given widths: re-evaluate it independently."""
    data, obj = narrow
    blocks = data.blocks(2)
    Y = obj.target().numpy()
    val, info = xu.nested_rank_search(blocks, Y, [1, 1], restarts=2, max_iter=300)
    assert info["restarts"] == 2 and len(info["values"]) == 2 and val == min(info["values"])
    brute = _brute(fit_lbfgs, data, obj, [1, 1], starts=6)
    assert val >= brute * (1 - 1e-6)


def test_bounds_meet_when_G0_already_fits():
    """With n̄ ≤ m_x the free read-out of G_0 fits Y exactly, so L* = 0 however narrow the widths."""
    g = csbm(60, 3, p_in=0.25, p_out=0.05, feature_dim=12, feature_sep=2.0, seed=6)
    d2 = make_xu_data(g.x, build_operator("gcn", g), torch.arange(0, 60, 6))  # n̄ = 10 ≤ m_x = 12
    o2 = XuObjective("squared", g.y[d2.nodes], 3)
    opt = xu.global_optimum(d2.blocks(2), o2.target(), [1, 1], multiscale=True)
    assert opt.exact and opt.case == "nested-rank (bounds meet)"
    assert opt.value == pytest.approx(0.0, abs=1e-18 + 1e-9 * float((o2.target() ** 2).sum()))


def test_nested_rank_search_wall_clock_budget(narrow):
    """A spent budget stops the search after the first evaluation; the value is still attained (an upper bound)."""
    data, obj = narrow
    blocks = data.blocks(2)
    Y = obj.target().numpy()
    full, _ = xu.nested_rank_search(blocks, Y, [1, 1], restarts=2)
    cut, info = xu.nested_rank_search(blocks, Y, [1, 1], restarts=2, max_wall_s=0.0)
    assert info["stopped_by_wall_clock"] and info["restarts"] == 1 and info["iterations"] == [-1]
    assert cut >= full * (1 - 1e-12)
    opt = xu.global_optimum(blocks, Y, [1, 1], multiscale=True, search_max_wall_s=0.0)
    assert opt.search["stopped_by_wall_clock"] and opt.lower <= opt.upper <= opt.search["single_readout_upper"]
