"""A GCN as in PyG's examples/gcn.py, made deeper, watched by gnndyn's Monitor (two added lines in the loop).

    python examples/gcn.py --depth 8 --out runs/example-gcn     # then open runs/example-gcn/report.html

An existing --out folder is refused before training; --overwrite replaces that run folder whole.
"""

import math

import torch
import torch.nn.functional as F
from _data import fail, load, parse
from torch_geometric.nn import GCNConv

import gnndyn as gd


class GCN(torch.nn.Module):
    def __init__(self, d_in, hidden, d_out, depth):
        super().__init__()
        dims = [d_in] + [hidden] * (depth - 1) + [d_out]
        self.convs = torch.nn.ModuleList(GCNConv(dims[k], dims[k + 1], cached=True) for k in range(depth))

    def forward(self, x, edge_index):
        for k, conv in enumerate(self.convs):
            x = conv(F.dropout(x, 0.5, self.training), edge_index)
            x = F.relu(x) if k < len(self.convs) - 1 else x
        return x


def main(argv=None):
    args = parse(__doc__, depth=8, argv=argv)
    x, edge_index, y, train, test, C = load(args)
    model = GCN(x.shape[1], 16, C, args.depth)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    mon = gd.Monitor(model, edge_index=edge_index, baseline_loss=math.log(C), summary_every=50)
    for epoch in range(args.epochs):
        model.train()
        opt.zero_grad()
        loss = F.cross_entropy(model(x, edge_index)[train], y[train])
        loss.backward()
        mon.step(loss)
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(x, edge_index).argmax(1)[test] == y[test]).float().mean())
    print(f"test accuracy {acc:.3f}; alarms:", mon.alarms() or "none")
    if args.out:
        try:
            print("report:", mon.save(args.out, overwrite=args.overwrite).path("report.html"))
        except gd.GnndynError as exc:  # e.g. --out was taken while training ran
            fail(exc)
    mon.close()
    return mon


if __name__ == "__main__":
    main()
