"""The options of ``gnndyn bench``, checked before anything is built, timed or printed: every message names
the command-line option as typed (``--memory-nodes``, not an internal name), the value given and the valid
range. The benchmark's graph is a two-class CSBM with Deshpande's graph signal λ and feature signal μ
(:func:`gnndyn.data.csbm`), which bounds the average degree from both sides."""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch

from gnndyn.errors import GnndynError, resolve

CONTENDERS = ("gnndyn", "gnndyn+probes", "fair", "plain", "pyg", "floor")
DTYPES = {"float32": torch.float32, "float64": torch.float64}

#: The benchmark's graph: a two-class CSBM with Deshpande's graph signal λ and feature signal μ
#: (:func:`gnndyn.data.csbm`). Its edge probabilities (d ± λ√d)/n lie in [0, 1] exactly when
#: λ² ≤ d ≤ (√(λ² + 4n) − λ)²/4, so n ≥ 2λ² nodes are needed for any degree at all.
LAM, MU = 2.0, 4.0
MIN_DEGREE = LAM**2
MIN_NODES = math.ceil(2 * LAM**2)


class BenchFailure(RuntimeError):
    """The benchmark ran but part of it failed (a peak-memory worker, writing the JSON file); the message
    says which part, why, and what was kept."""


def max_degree(nodes: int) -> float:
    """The largest average degree the benchmark's CSBM admits on ``nodes`` nodes (p_in ≤ 1)."""
    return (math.sqrt(LAM**2 + 4 * nodes) - LAM) ** 2 / 4


def _check_int(option: str, value: Any, minimum: int, what: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GnndynError(f"{option} must be {what or f'an integer ≥ {minimum}'}; got {value!r}.")


def _check_degree(option: str, value: Any, nodes: int | None, nodes_option: str) -> None:
    """``value`` finite and ≥ λ², and with ``nodes`` given, small enough that p_in ≤ 1."""
    why = (f"the benchmark's graph is a two-class CSBM with graph signal λ = {LAM:g}: an average degree "
           f"below λ² = {MIN_DEGREE:g} makes the between-class edge probability negative")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GnndynError(f"{option} must be a finite number ≥ {MIN_DEGREE:g}; got {value!r}.")
    if value < MIN_DEGREE:
        raise GnndynError(f"{option} must be ≥ {MIN_DEGREE:g} ({why}); got {value!r}.")
    if nodes is not None and value + LAM * math.sqrt(value) > nodes:
        top = math.floor(100 * max_degree(nodes)) / 100
        raise GnndynError(
            f"{option} {value!r} is too large for {nodes_option} {nodes}: on {nodes} nodes the benchmark's CSBM "
            f"admits an average degree from {MIN_DEGREE:g} to {top:g} (above it the within-class edge probability "
            f"exceeds 1). Give a {option} of at most {top:g} or a larger {nodes_option}.")


def check_options(*, nodes: int = 100_000, degree: float = 10.0, depth: int = 40, width: int = 64, rounds: int = 7,
                  memory_nodes: int = 0, memory_degree: float = 20.0, memory_depth: int = 40, replicas: int = 0,
                  device: str = "cpu", dtype: str = "float32",
                  contenders: tuple[str, ...] = CONTENDERS) -> tuple[str, tuple[str, ...]]:
    """Check every option of ``gnndyn bench`` before anything is built; a :class:`GnndynError` naming the
    option (as typed on the command line), the value given and the valid range otherwise.

    Returns the canonical dtype name and contender names (``FLOAT32`` → ``float32``; duplicates dropped).
    """
    _check_int("--nodes", nodes, MIN_NODES,
               f"an integer ≥ {MIN_NODES} (the smallest graph on which the benchmark's two-class CSBM "
               f"exists, at average degree {MIN_DEGREE:g})")
    _check_degree("--degree", degree, nodes, "--nodes")
    _check_int("--depth", depth, 0, "an integer ≥ 0 (the number of hidden layers)")
    _check_int("--width", width, 1)
    _check_int("--rounds", rounds, 1, "an integer ≥ 1 (≥ 5 advised for the spreads)")
    _check_int("--replicas", replicas, 0, "0 (skip the stacked-seeds timing) or an integer ≥ 1")
    if not (isinstance(memory_nodes, int) and memory_nodes == 0):
        _check_int("--memory-nodes", memory_nodes, MIN_NODES,
                   f"0 (skip the peak-memory runs) or an integer ≥ {MIN_NODES}")
    _check_degree("--memory-degree", memory_degree, memory_nodes or None, "--memory-nodes")
    _check_int("--memory-depth", memory_depth, 0, "an integer ≥ 0 (the number of hidden layers)")
    try:
        dtype = next(k for k, v in DTYPES.items() if v is resolve("dtype", dtype, DTYPES))
    except GnndynError as exc:
        raise GnndynError(f"--dtype: {exc}") from None
    check_device(device)
    if isinstance(contenders, str):
        contenders = (contenders,)
    names: list[str] = []
    for c in contenders:
        try:
            name = resolve("contender", c, {k: k for k in CONTENDERS})
        except GnndynError:
            close = difflib.get_close_matches(str(c), CONTENDERS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise GnndynError(f"--contenders: unknown contender {c!r}; valid contenders: {', '.join(CONTENDERS)} "
                              f"(comma-separated), or all.{hint}") from None
        if name not in names:
            names.append(name)
    if not names:
        raise GnndynError(f"--contenders names no contender; give a comma-separated list of "
                          f"{', '.join(CONTENDERS)}, or all.")
    return dtype, tuple(names)


#: the options of the peak-memory runs, with their defaults: they act only with ``--memory-nodes N`` (N > 0)
MEMORY_OPTIONS = {"memory_degree": 20.0, "memory_depth": 40, "memory_probes": True}


def ineffective_options(*, memory_nodes: int = 0, memory_degree: float = 20.0, memory_depth: int = 40,
                        memory_probes: bool = True, given: Collection[str] | None = None) -> str | None:
    """The warning for options that were given but have no effect, or ``None``: the peak-memory options
    (``--memory-degree``, ``--memory-depth``, ``--[no-]memory-probes``) while ``--memory-nodes`` is 0, which
    skips the peak-memory runs. ``given``: the parameters set explicitly (on the command line); ``None``:
    those whose value differs from its default."""
    if memory_nodes:
        return None
    values = {"memory_degree": memory_degree, "memory_depth": memory_depth, "memory_probes": memory_probes}
    if given is None:
        given = [k for k, v in values.items() if v != MEMORY_OPTIONS[k]]
    typed = {"memory_degree": f"--memory-degree {memory_degree:g}" if isinstance(memory_degree, (int, float))
             else f"--memory-degree {memory_degree!r}",
             "memory_depth": f"--memory-depth {memory_depth}",
             "memory_probes": "--memory-probes" if memory_probes else "--no-memory-probes"}
    names = [typed[k] for k in MEMORY_OPTIONS if k in given]
    if not names:
        return None
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return (f"{listed} {'has' if len(names) == 1 else 'have'} no effect without --memory-nodes N: the peak-memory "
            "runs are skipped while --memory-nodes is 0 (its default).")


def check_json_path(path: str | Path | None) -> Path | None:
    """``path`` as a :class:`Path` when a JSON file can be written there: not a folder, in an existing,
    writable folder. Checked before the benchmark runs, so that no result is lost at the end."""
    if path is None:
        return None
    p = Path(path)
    if str(path) == "" or p.is_dir():
        raise GnndynError(f"--json {str(path)!r} is a folder, not a file; give a file path such as "
                          f"--json {p / 'bench.json'}.")
    parent = p.parent
    if not parent.exists():
        raise GnndynError(f"--json {path}: the folder {parent} does not exist; create it first "
                          f"(mkdir -p {parent}) or give a file in an existing folder.")
    if not parent.is_dir():
        raise GnndynError(f"--json {path}: {parent} is a file, not a folder; give a file in an existing folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GnndynError(f"--json {path}: the folder {parent} is not writable; give a file in a folder you can "
                          "write to.")
    if p.exists() and not os.access(p, os.W_OK):
        raise GnndynError(f"--json {path}: the file exists and is not writable; give another path or make it "
                          "writable.")
    return p


def check_device(device: str) -> torch.device:
    """``device`` as a torch device, or a clear error when it is not usable here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise GnndynError(f"--device: unknown device {device!r}; valid devices: cpu, cuda, cuda:N.") from exc
    if dev.type not in ("cpu", "cuda"):
        raise GnndynError(f"--device {device!r}: the benchmark runs on cpu, cuda or cuda:N.")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GnndynError(f"--device {device!r} asked for, but torch {torch.__version__} sees no CUDA device; "
                          "use --device cpu or install a CUDA build of torch on a machine with a GPU.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        k = torch.cuda.device_count()
        raise GnndynError(f"--device {device!r}: torch sees {k} CUDA device(s), cuda:0 to cuda:{k - 1}.")
    return dev
