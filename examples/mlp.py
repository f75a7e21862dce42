"""A plain MLP (no graph) watched by gnndyn's Monitor: there is no message-passing layer, so the layers are given
(``layers=torch.nn.Linear``); the graph is still passed so that the Dirichlet energy of the signals is measured.

    python examples/mlp.py --depth 8 --out runs/example-mlp
"""

import math

import torch
import torch.nn.functional as F
from _data import fail, load, parse

import gnndyn as gd


class MLP(torch.nn.Module):
    def __init__(self, d_in, hidden, d_out, depth):
        super().__init__()
        dims = [d_in] + [hidden] * (depth - 1) + [d_out]
        self.lins = torch.nn.ModuleList(torch.nn.Linear(dims[k], dims[k + 1]) for k in range(depth))

    def forward(self, x, edge_index=None):
        for k, lin in enumerate(self.lins):
            x = lin(F.dropout(x, 0.5, self.training))
            x = F.relu(x) if k < len(self.lins) - 1 else x
        return x


def main(argv=None):
    args = parse(__doc__, depth=8, argv=argv)
    x, edge_index, y, train, test, C = load(args)
    model = MLP(x.shape[1], 32, C, args.depth)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=0.0005)
    mon = gd.Monitor(model, edge_index=edge_index, baseline_loss=math.log(C), summary_every=50, layers=torch.nn.Linear)
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
