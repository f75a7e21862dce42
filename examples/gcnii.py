"""GCNII as in PyG's examples/gcn2_cora.py (initial residual α = 0.1, identity mapping θ = 0.5), watched by
gnndyn's Monitor: deep, and it still trains.

    python examples/gcnii.py --depth 32 --out runs/example-gcnii
"""

import math

import torch
import torch.nn.functional as F
from _data import fail, load, parse
from torch_geometric.nn import GCN2Conv

import gnndyn as gd


class GCNII(torch.nn.Module):
    def __init__(self, d_in, hidden, d_out, depth, alpha=0.1, theta=0.5):
        super().__init__()
        self.lin_in, self.lin_out = torch.nn.Linear(d_in, hidden), torch.nn.Linear(hidden, d_out)
        self.convs = torch.nn.ModuleList(GCN2Conv(hidden, alpha, theta, layer=k + 1, cached=True) for k in range(depth))

    def forward(self, x, edge_index):
        x = x0 = F.relu(self.lin_in(F.dropout(x, 0.6, self.training)))
        for conv in self.convs:
            x = F.relu(conv(F.dropout(x, 0.6, self.training), x0, edge_index))
        return self.lin_out(F.dropout(x, 0.6, self.training))


def main(argv=None):
    args = parse(__doc__, depth=32, argv=argv)
    x, edge_index, y, train, test, C = load(args)
    model = GCNII(x.shape[1], 64, C, args.depth)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=0.0005)
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
