"""A GAT as in PyG's examples/gat.py (8 heads concatenated, ELU, dropout 0.6; one averaged head at the output),
made deeper, watched by gnndyn's Monitor.

    python examples/gat.py --depth 8 --out runs/example-gat
"""

import math

import torch
import torch.nn.functional as F
from _data import fail, load, parse
from torch_geometric.nn import GATConv

import gnndyn as gd


class GAT(torch.nn.Module):
    def __init__(self, d_in, hidden, d_out, depth, heads=8):
        super().__init__()
        self.convs = torch.nn.ModuleList()
        for k in range(depth):
            last = k == depth - 1
            d = d_in if k == 0 else hidden * heads
            self.convs.append(GATConv(d, d_out, heads=1, concat=False, dropout=0.6) if last
                              else GATConv(d, hidden, heads=heads, dropout=0.6))

    def forward(self, x, edge_index):
        for k, conv in enumerate(self.convs):
            x = conv(F.dropout(x, 0.6, self.training), edge_index)
            x = F.elu(x) if k < len(self.convs) - 1 else x
        return x


def main(argv=None):
    args = parse(__doc__, depth=8, argv=argv)
    x, edge_index, y, train, test, C = load(args)
    model = GAT(x.shape[1], 8, C, args.depth)
    opt = torch.optim.Adam(model.parameters(), lr=0.005, weight_decay=0.0005)
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
