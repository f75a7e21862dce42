"""``gnndyn graph-info`` and ``gnndyn bench``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from gnndyn.cli import SetOpt, _fail, _print_rows, _warn_repeated, app, console, err
from gnndyn.errors import GnndynError

SPECTRAL_METHODS = ("auto", "dense", "lanczos")


def _check_set_keys(dataset: str, params: dict, accepted: dict) -> None:
    """graph-info's ``--set`` takes the dataset's parameters only: an unknown key is an error listing the ones
    it takes (never the data root, which ``--data-root`` sets, nor an operator's parameters, which graph-info
    leaves at their defaults)."""
    import difflib
    import inspect

    from gnndyn.operators import OPERATORS

    settable = [k for k in accepted if k != "data_root"]
    for key in params:
        if key in settable:
            continue
        if key == "data_root" and "data_root" in accepted:
            raise GnndynError(f"--set data_root: give the data folder of {dataset!r} with --data-root DIR, not --set.")
        takes = (f"it takes: {', '.join(settable)}" if settable
                 else "it takes none" + (" (its data folder is given with --data-root)" if "data_root" in accepted else ""))
        owners = sorted(name for name, fn in OPERATORS.items() if key in list(inspect.signature(fn).parameters)[1:])
        if owners:
            why = (f" {key} is a parameter of the {' and '.join(owners)} operator, which graph-info builds with its "
                   "defaults; it cannot be set here.")
        else:
            close = difflib.get_close_matches(key, settable, n=1)
            why = f" Did you mean {close[0]!r}?" if close else ""
        raise GnndynError(f"--set {key}: {dataset!r} has no parameter {key!r}; graph-info's --set takes the "
                          f"dataset's parameters, and {takes}.{why}")


@app.command("graph-info")
def graph_info(
    dataset: Annotated[str, typer.Argument(help="cora, citeseer, pubmed, us-climate, or a generator: csbm, sbm, erdos-renyi, random-regular, knn-ring, barabasi-albert.")],
    operator: Annotated[str, typer.Option(help="Operator whose spectral facts to report.")] = "gossip",
    lcc: Annotated[bool, typer.Option("--lcc", help="Keep the largest connected component.")] = False,
    data_root: Annotated[Optional[str], typer.Option("--data-root", help="Data root: Planetoid's <Name>/raw/ (or planetoid/<Name>/raw/), us-climate's climate/ (else $GNNDYN_DATA_ROOT).")] = None,
    set_: SetOpt = None,
    method: Annotated[str, typer.Option(help="Eigen-solver: auto, dense or lanczos.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Size, degrees, components and the operator's spectral facts (λ, spectral gap 1 − λ) of a graph."""
    from gnndyn.data.registry import DATASETS, check_graph_params, dataset_params, load_graph
    from gnndyn.errors import resolve
    from gnndyn.operators import OPERATORS, build_operator
    from gnndyn.progress import task
    from gnndyn.spec import parse_value

    _warn_repeated(set_)
    try:
        resolve("dataset", dataset, DATASETS)
        op_fn = resolve("operator", operator, OPERATORS)
        if method not in SPECTRAL_METHODS:
            raise GnndynError(f"--method must be one of {', '.join(SPECTRAL_METHODS)}; got {method!r}.")
        params = {}
        for o in set_ or []:
            if "=" not in o:
                raise GnndynError(f"--set expects KEY=VALUE, KEY a parameter of the dataset; got {o!r}.")
            k, v = o.split("=", 1)
            params[k.strip()] = parse_value(v.strip())
        _check_set_keys(dataset, params, dataset_params(dataset))
        if "data_root" in dataset_params(dataset):
            params["data_root"] = data_root
        try:
            check_graph_params(dataset, params)  # types and ranges, before anything is built
        except GnndynError as exc:
            msg = str(exc).removeprefix(f"{dataset}: ")
            raise GnndynError(msg if msg.startswith("dataset ") else f"--set for dataset {dataset!r}: {msg}") from None
        with task(f"{dataset}: loading or generating the graph", None):
            g = load_graph(dataset, lcc=lcc, **params)
        if op_fn is OPERATORS["gossip"] and g.num_nodes and not g.degrees().any():
            raise GnndynError(
                f"the {dataset} graph has no edges, so the gossip operator P = I − L/d_max (d_max = the maximum "
                "degree, 0 here) is undefined. Give --set values that produce edges (a larger edge probability "
                "or average degree), or another --operator such as gcn.")
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
    ctx: typer.Context,
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
    from gnndyn.bench import CONTENDERS, MEMORY_OPTIONS, BenchFailure, run_step_benchmark

    # the options typed on the command line (by the name of click's ParameterSource: typer ≥ 0.2x has its
    # own copy of click, older typers use click's)
    given = [k for k in MEMORY_OPTIONS if getattr(ctx.get_parameter_source(k), "name", None) == "COMMANDLINE"]
    names = CONTENDERS if contenders.strip().lower() == "all" else tuple(
        c.strip() for c in contenders.split(",") if c.strip())
    try:
        run_step_benchmark(nodes=nodes, degree=degree, depth=depth, width=width, rounds=rounds,
                           memory_nodes=memory_nodes, memory_degree=memory_degree, memory_depth=memory_depth,
                           memory_probes=memory_probes, device=device, dtype=dtype, json_path=json_out,
                           profile=profile, replicas=replicas, console=console, contenders=names, given=given,
                           warn=lambda m: err.print(f"[yellow]warning:[/] {escape(m)}", highlight=False,
                                                    soft_wrap=True))
    except GnndynError as exc:  # bad input, found before anything ran
        _fail(str(exc))
    except BenchFailure as exc:  # a part of the benchmark failed after the rest was printed
        _fail(str(exc), code=1)
