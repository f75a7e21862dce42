"""A GIN as in PyG's examples/gin.py (GINConv around an MLP with batch norm), for node classification, made
deeper, watched by gnndyn's Monitor (the classifier head is not a message-passing layer and is not monitored).

    python examples/gin.py --depth 8 --out runs/example-gin
"""

import math

import torch
import torch.nn.functional as F
from _data import fail, load, parse
from torch_geometric.nn import GINConv

import gnndyn as gd


class GIN(torch.nn.Module):
    def __init__(self, d_in, hidden, d_out, depth):
        super().__init__()
        mlp = lambda a: torch.nn.Sequential(torch.nn.Linear(a, hidden), torch.nn.BatchNorm1d(hidden),
                                            torch.nn.ReLU(), torch.nn.Linear(hidden, hidden))
        self.convs = torch.nn.ModuleList(GINConv(mlp(d_in if k == 0 else hidden)) for k in range(depth))
        self.head = torch.nn.Linear(hidden, d_out)

    def forward(self, x, edge_index):
        for conv in self.convs:
            x = F.relu(conv(x, edge_index))
        return self.head(F.dropout(x, 0.5, self.training))


def main(argv=None):
    args = parse(__doc__, depth=8, argv=argv)
    x, edge_index, y, train, test, C = load(args)
    model = GIN(x.shape[1], 32, C, args.depth)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=0.0)
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
