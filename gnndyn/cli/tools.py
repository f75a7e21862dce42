"""``gnndyn graph-info`` and ``gnndyn bench``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from gnndyn.cli import SetOpt, _fail, _print_rows, _warn_repeated, app, console, err
from gnndyn.errors import GnndynError


@app.command("graph-info")
def graph_info(
    dataset: Annotated[str, typer.Argument(help="cora, citeseer, pubmed, us-climate, or a generator: csbm, sbm, erdos-renyi, random-regular, knn-ring, barabasi-albert.")],
    operator: Annotated[str, typer.Option(help="Operator whose spectral facts to report.")] = "gossip",
    lcc: Annotated[bool, typer.Option("--lcc", help="Keep the largest connected component.")] = False,
    data_root: Annotated[Optional[str], typer.Option("--data-root", help="Data root: Planetoid's <Name>/raw/, us-climate's climate/ (else $GNNDYN_DATA_ROOT).")] = None,
    set_: SetOpt = None,
    method: Annotated[str, typer.Option(help="Eigen-solver: auto, dense or lanczos.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Size, degrees, components and the operator's spectral facts (λ, spectral gap 1 − λ) of a graph."""
    from gnndyn.data.registry import DATASETS, dataset_params, load_graph
    from gnndyn.errors import resolve
    from gnndyn.operators import OPERATORS, build_operator
    from gnndyn.progress import task
    from gnndyn.spec import parse_value

    _warn_repeated(set_)
    try:
        resolve("dataset", dataset, DATASETS)
        resolve("operator", operator, OPERATORS)
        params = {}
        for o in set_ or []:
            if "=" not in o:
                raise GnndynError(f"--set expects key=value; got {o!r}.")
            k, v = o.split("=", 1)
            params[k.strip()] = parse_value(v.strip())
        if "data_root" in dataset_params(dataset):
            params["data_root"] = data_root
        with task(f"{dataset}: loading or generating the graph", None):
            g = load_graph(dataset, lcc=lcc, **params)
        with task(f"{dataset} ({g.num_nodes} nodes): {operator} operator and its spectral facts", None):
            op = build_operator(operator, g)
            facts = op.spectral(method=method)
    except GnndynError as exc:
        _fail(str(exc))
    info = {**g.summary(), **facts.as_dict(), "lcc": lcc}
    info["operator"] = operator
    info.pop("name", None)
    info = {"dataset": dataset, **info}
    if as_json:
        print(json.dumps(info))
        return
    _print_rows(["quantity", "value"], [[escape(k), escape(f"{v:.6g}" if isinstance(v, float) else str(v))]
                                        for k, v in info.items()], header=False)


@app.command()
def bench(
    nodes: Annotated[int, typer.Option(help="Graph size for the step benchmark.")] = 100_000,
    degree: Annotated[float, typer.Option(help="Average degree.")] = 10.0,
    depth: Annotated[int, typer.Option(help="GNN depth L.")] = 40,
    width: Annotated[int, typer.Option(help="Hidden width.")] = 64,
    rounds: Annotated[int, typer.Option(help="Interleaved timed rounds (medians and spreads; ≥ 5 advised).")] = 7,
    memory_nodes: Annotated[int, typer.Option(help="Graph size for the peak-memory runs (0 to skip).")] = 0,
    memory_degree: Annotated[float, typer.Option(help="Average degree for the peak-memory runs.")] = 20.0,
    memory_depth: Annotated[int, typer.Option(help="Depth for the peak-memory runs.")] = 40,
    memory_probes: Annotated[bool, typer.Option(help="Also measure the peak memory of a step with all probes.")] = True,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    dtype: Annotated[str, typer.Option(help="float32 or float64.")] = "float32",
    profile: Annotated[bool, typer.Option(help="Print torch.profiler's table of one gnndyn step.")] = False,
    replicas: Annotated[int, typer.Option(help="Also time R seeds stacked along the feature axis vs R separate passes (0 to skip).")] = 0,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the results as JSON to this file.")] = None,
    contenders: Annotated[str, typer.Option(help="Comma-separated contenders to time (default all): gnndyn, gnndyn+probes, fair, plain, pyg, floor.")] = "all",
) -> None:
    """Time one gradient-descent step of gnndyn's deep GNN against its contenders (interleaved rounds), and peak memory."""
    from gnndyn.bench import CONTENDERS, run_step_benchmark

    try:
        run_step_benchmark(nodes=nodes, degree=degree, depth=depth, width=width, rounds=rounds,
                           memory_nodes=memory_nodes, memory_degree=memory_degree, memory_depth=memory_depth,
                           memory_probes=memory_probes, device=device, dtype=dtype, json_path=json_out,
                           profile=profile, replicas=replicas, console=console,
                           contenders=tuple(c.strip() for c in contenders.split(",") if c.strip()) if contenders != "all"
                           else CONTENDERS)
    except GnndynError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc
