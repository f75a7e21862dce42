"""Data and command line shared by the examples: Cora (public split, features normalized as in PyG's examples),
or with ``--smoke`` a small synthetic CSBM graph (3 classes, half the nodes for training).

``--out DIR`` must be new or an empty folder; an existing run folder is refused before training starts (the
message says why and how to go on), unless ``--overwrite``, which replaces it whole when the run is saved."""

from __future__ import annotations

import argparse
import sys

import torch

import gnndyn as gd
from gnndyn.monitor.save import check_destination


def parse(description: str, depth: int, epochs: int = 200, argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--depth", type=int, default=depth)
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--out", default=None, help="run folder to write (report.html inside); must be new or empty")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace the --out run folder whole if it exists (default: refuse)")
    ap.add_argument("--data-root", default=None, help="folder holding Cora/raw/ (else $GNNDYN_DATA_ROOT)")
    ap.add_argument("--smoke", action="store_true", help="a small synthetic graph and 3 epochs")
    a = ap.parse_args(argv)
    if a.smoke:
        a.epochs = min(a.epochs, 3)
    if a.out:  # refuse a taken --out now, not after training
        try:
            check_destination(a.out, overwrite=a.overwrite, cli=True)
        except gd.GnndynError as exc:
            fail(exc)
    return a


def fail(exc: Exception) -> None:
    """Print gnndyn's message (what was expected, what was given, how to fix it) without a traceback; exit 2."""
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2)


def load(args: argparse.Namespace):
    """(x, edge_index, y, train_mask, test_mask, number of classes); features in the default dtype."""
    if args.smoke:
        g = gd.csbm(120, 3, p_in=0.15, p_out=0.03, feature_dim=16, feature_sep=2.0, seed=0)
        train = torch.rand(g.num_nodes, generator=torch.Generator().manual_seed(0)) < 0.5
        return g.x.to(torch.get_default_dtype()), g.edge_index, g.y, train, ~train, 3
    g = gd.load_planetoid("cora", args.data_root)
    x = (g.x / g.x.sum(1, keepdim=True).clamp_min(1)).to(torch.get_default_dtype())
    return x, g.edge_index, g.y, g.train_mask, g.test_mask, int(g.y.max()) + 1
