"""What a sweep checks before it writes anything (:func:`gnndyn.sweep.runner.prepare`, the same for
``--dry-run`` and a real run): the backend, workers and address (:func:`check_backend`); that every point
can run on this machine (:func:`check_machine`, :func:`gnndyn.spec.preflight` per point, its message
reworded in a sweep's own terms); and the folder, which must be new, empty or hold this same sweep
(:func:`check_folder`). Also the sweep folder's state file (:data:`SWEEP_FILE`, :func:`read_sweep`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gnndyn.errors import GnndynError, MachineError, flag, resolve
from gnndyn.sweep.backends import BACKENDS, cores, import_ray
from gnndyn.sweep.grid import Point, SweepConfig

SWEEP_FILE = "sweep.json"
LOCK_FILE = ".sweep.lock"
FORMAT = 1


def read_sweep(root: str | Path) -> dict[str, Any]:
    p = Path(root) / SWEEP_FILE
    if not p.is_file():
        raise GnndynError(f"{root} is not a sweep folder (no {SWEEP_FILE}); start one with `gnndyn sweep EXPERIMENT ... --out {root}`.")
    try:
        return json.loads(p.read_text())
    except (ValueError, OSError) as exc:
        raise GnndynError(f"{p} is not readable JSON ({exc}).") from None


def check_backend(backend: str | None, workers: Any = None, address: str | None = None, *,
                  origin: str = "") -> tuple[str, int]:
    """The backend's name (as :data:`BACKENDS` spells it) and the number of workers, or a
    :class:`GnndynError`: an unknown backend (listing the valid ones), workers below 1, an address for a
    backend other than ray, or the ray backend without Ray installed. ``origin`` says where a backend that
    was not given came from (a resumed sweep's record)."""
    name = resolve("backend", "local" if backend is None else backend, {b: b for b in BACKENDS})
    origin = origin or (" (the default)" if backend is None else "")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise GnndynError(f"--workers must be a whole number, 1 or more (worker processes, or Ray CPUs; by default "
                          f"one per core, {cores()} here); got {workers!r}.")
    if address and name != "ray":
        raise GnndynError(f"--address applies to the ray backend only (it names a Ray cluster to join); the backend "
                          f"here is {name!r}{origin}: add --backend ray, or drop --address.")
    if name == "ray":
        import_ray()
        if address:
            check_address(address)
    return name, workers if workers is not None else cores()


def check_address(address: str, timeout: float = 5.0) -> None:
    """A Ray cluster address of the form ``host:port`` must answer a TCP connection within ``timeout``
    seconds, before anything is written (Ray itself would retry for minutes). ``auto`` and ``ray://``
    addresses are left to Ray."""
    import socket

    if address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as exc:
        raise GnndynError(f"--address {address}: no Ray cluster answers there ({exc}); start one (ray start --head) "
                          f"and give the address it prints, or drop --address to start a local one. Nothing was "
                          f"written.") from None


#: a value to suggest for an option the machine's error names without one
_PLACEHOLDER = {"data_root": "DIR"}


def _point_text(pt: Point) -> str:
    values = ", ".join(f"{k}={json.dumps(v)}" for k, v in pt.axes.items())
    return f"{pt.index} ({values})" if values else str(pt.index)


def _in_sweep_terms(exc: GnndynError, fields: Any) -> tuple[str, dict[str, str]]:
    """A preflight error in a sweep's terms: the options it names (a :class:`~gnndyn.errors.MachineError`
    spells them as ``gnndyn run``'s flags, --device, --data-root..., which the sweep does not take) as the
    spec keys they set, without the flag-worded fix; and those keys with the value to suggest."""
    if not isinstance(exc, MachineError):
        return str(exc).rstrip(" .;"), {}
    keys = {k: exc.fix.get(k, _PLACEHOLDER.get(k, "...")) for k in exc.options if k in fields}
    message = exc.worded(lambda k: k if k in fields else flag(k), fix=False)
    return message.rstrip(" .;"), keys


def _fix_in_sweep(cfg: SweepConfig, keys: dict[str, str], resumed: Path | None) -> str:
    """How to change ``keys`` (to the values suggested) for the failing points, in this sweep's terms."""
    if resumed is not None:
        what = f"sets {', '.join(keys)}" if keys else "makes these points"
        with_ = " with " + ", ".join(f"{k}={v}" for k, v in keys.items()) if keys else ""
        return (f"The sweep stored in {resumed} {what}, and --resume runs it as stored: resume it on a machine where "
                f"it can run, or start a new sweep{with_} and another --out.")
    if not keys:
        return "Change the values named above in the sweep (--grid, --set or the sweep file)."
    axes = list(cfg.grid) + [k for g in cfg.zip for k in g]
    fixes = []
    for key, v in keys.items():
        if key in axes:
            fixes.append(f"change the values of its {key} axis (--grid {key}=... or {key} in the sweep file's "
                         f"grid/zip), e.g. --grid {key}={v}")
        else:
            where = "in the sweep's base" if key in cfg.base else "for every point"
            fixes.append(f"set {key} {where} with --set {key}={v} (or {key}: {v} under base: in the sweep file)")
    return "Fix it in the sweep: " + "; ".join(fixes) + "; or run the sweep on a machine that has what it asks for."


def check_machine(cfg: SweepConfig, points: list[Point], *, resumed: Path | None = None) -> None:
    """:func:`gnndyn.spec.preflight` of every point (the checks that depend on this machine: the device, the
    stored data sets), as each point's run makes it; the points that fail are named, with the fix in the
    sweep's terms. Points that agree in what preflight looks at (device, dtype, data root, data sets) are
    checked once."""
    from gnndyn.spec import preflight

    bad: dict[str, tuple[GnndynError, list[Point]]] = {}
    seen: dict[Any, GnndynError | None] = {}
    for pt in points:
        spec = pt.spec
        used = getattr(spec, "datasets_used", None)
        sig = (spec.device, spec.dtype, spec.data_root, tuple(used())) if callable(used) else pt.index
        if sig not in seen:
            try:
                preflight(spec)
                seen[sig] = None
            except GnndynError as exc:
                seen[sig] = exc
        if seen[sig] is not None:
            bad.setdefault(str(seen[sig]), (seen[sig], []))[1].append(pt)
    if not bad:
        return
    parts, keys = [], {}
    fields = set(type(points[0].spec).model_fields)
    for exc, group in bad.values():
        message, found = _in_sweep_terms(exc, fields)
        for k, v in found.items():
            keys.setdefault(k, v)
        texts = [_point_text(pt) for pt in group[:5]] + ([f"{len(group) - 5} more"] if len(group) > 5 else [])
        shown = texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " and " + texts[-1]
        parts.append(f"sweep point{'s' if len(group) > 1 else ''} {shown} cannot run on this machine "
                     f"({len(group)} of {len(points)} points): {message}")
    raise GnndynError("; ".join(parts) + ". " + _fix_in_sweep(cfg, keys, resumed) + " Nothing was written.")


def _names(entries: list[str], n: int = 4) -> str:
    return ", ".join(entries[:n]) + (f" and {len(entries) - n} more" if len(entries) > n else "")


def check_folder(cfg: SweepConfig, root: Path) -> dict[str, Any] | None:
    """The stored state when ``root`` holds this same sweep; ``None`` when it is new or empty; otherwise a
    :class:`GnndynError` (a file, a run folder, any other non-empty folder, a different sweep): a sweep
    never writes into a folder that is not its own."""
    if root.exists() and not root.is_dir():
        raise GnndynError(f"--out {root} is a file, not a folder; give a new or empty folder for the sweep "
                          "(or the folder of this same sweep, to continue it).")
    if (root / SWEEP_FILE).is_file():
        old = read_sweep(root)
        if not isinstance(old, dict) or old.get("format") != FORMAT or not isinstance(old.get("config"), dict):
            raise GnndynError(f"{root / SWEEP_FILE} was not written by this version of gnndyn sweep (format "
                              f"{old.get('format') if isinstance(old, dict) else None!r}); choose another --out.")
        new = cfg.as_dict()
        if old["config"] != new:
            differs = [k for k in new if old["config"].get(k) != new[k]]
            raise GnndynError(f"{root} holds a different sweep ({old.get('experiment')}, axes {old.get('axes')}; "
                              f"it differs in {', '.join(differs)}); continue that one as it is with "
                              f"`gnndyn sweep --resume {root}`, or choose another --out. Nothing was changed.")
        return old
    if root.is_dir():
        entries = sorted(p.name for p in root.iterdir() if p.name != LOCK_FILE)
        if entries:
            run_files = [n for n in ("spec.json", "run.json") if n in entries]
            what = (f"a gnndyn run folder (it holds {' and '.join(run_files)})" if run_files
                    else f"not empty (it holds {_names(entries)}) and has no {SWEEP_FILE}")
            raise GnndynError(f"--out {root} is {what}: not a sweep folder. A sweep writes only into a new or empty "
                              "folder, or one holding the same sweep; choose another --out. Nothing was changed.")
    return None
