"""Data and command line shared by the examples: Cora (public split, features normalized as in PyG's examples),
or with ``--smoke`` a small synthetic CSBM graph (3 classes, half the nodes for training)."""

from __future__ import annotations

import argparse

import torch

import gnndyn as gd


def parse(description: str, depth: int, epochs: int = 200, argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--depth", type=int, default=depth)
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--out", default=None, help="run folder to write (report.html inside)")
    ap.add_argument("--data-root", default=None, help="folder holding Cora/raw/ (else $GNNDYN_DATA_ROOT)")
    ap.add_argument("--smoke", action="store_true", help="a small synthetic graph and 3 epochs")
    a = ap.parse_args(argv)
    if a.smoke:
        a.epochs = min(a.epochs, 3)
    return a


def load(args: argparse.Namespace):
    """(x, edge_index, y, train_mask, test_mask, number of classes); features in the default dtype."""
    if args.smoke:
        g = gd.csbm(120, 3, p_in=0.15, p_out=0.03, feature_dim=16, feature_sep=2.0, seed=0)
        train = torch.rand(g.num_nodes, generator=torch.Generator().manual_seed(0)) < 0.5
        return g.x.to(torch.get_default_dtype()), g.edge_index, g.y, train, ~train, 3
    g = gd.load_planetoid("cora", args.data_root)
    x = (g.x / g.x.sum(1, keepdim=True).clamp_min(1)).to(torch.get_default_dtype())
    return x, g.edge_index, g.y, g.train_mask, g.test_mask, int(g.y.max()) + 1
