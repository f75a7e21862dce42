"""A sweep's description and its expansion into points, every point's spec validated before anything runs.

A sweep is one experiment with

* ``base``: overrides applied to every point (``--set KEY=VALUE``),
* ``grid``: product axes, ``--grid model.depth=5,10,20`` (the Cartesian product of all of them),
* ``zip``: groups of keys that vary together (one axis per group; the lists of a group have equal lengths),
* ``seeds``: the seed axis, a count N or a list. N seeds run from the base's seed on, as ``gnndyn run
  --seed S --seeds N`` does: ``--seeds 3`` is seeds 0, 1, 2, and with ``--set seed=5`` seeds 5, 6, 7 (the
  base's seed becomes the axis's first value). A list is the seeds themselves, and a base seed with it
  is an error.

Points are enumerated in a fixed order — grid axes as given, then the zipped groups, then the seed,
the last axis varying fastest — so the same description always gives the same points in the same order.
Keys are the dotted keys of ``--set`` (:mod:`gnndyn.spec`); a bad key or value is reported with the
existing override errors (which list the valid keys) and names the point it came from.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gnndyn.errors import GnndynError
from gnndyn.spec import ExperimentSpec, parse_value

SEED = "seed"
FILE_KEYS = ("experiment", "base", "grid", "zip", "seeds", "figures")


@dataclass(frozen=True)
class SweepConfig:
    """What a sweep runs: the experiment, base overrides, product axes, zipped groups and seeds.

    ``sweep.json`` stores :meth:`as_dict`; ``--resume`` rebuilds the same config from it.
    """

    experiment: str
    base: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    zip: list[dict[str, list[Any]]] = field(default_factory=list)
    seeds: list[int] | None = None
    figures: bool = True

    def as_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SweepConfig":
        """The config as :meth:`as_dict` stored it; a ``TypeError`` naming the field when a value has the wrong
        shape (a file edited by hand)."""
        grid, zips, seeds, figures = d.get("grid") or {}, d.get("zip") or [], d.get("seeds"), d.get("figures", True)
        if not isinstance(grid, dict) or not all(isinstance(v, list) for v in grid.values()):
            raise TypeError(f"config.grid must map each key to a list of values; got {grid!r}")
        if not isinstance(zips, list) or not all(isinstance(g, dict) and all(isinstance(v, list) for v in g.values())
                                                 for g in zips):
            raise TypeError(f"config.zip must be a list of groups, each mapping keys to lists; got {zips!r}")
        if seeds is not None and (not isinstance(seeds, list) or not all(isinstance(x, int) and not isinstance(x, bool)
                                                                          for x in seeds)):
            raise TypeError(f"config.seeds must be a list of whole numbers or null; got {seeds!r}")
        if not isinstance(figures, bool):
            raise TypeError(f"config.figures must be true or false; got {figures!r}")
        return cls(experiment=d["experiment"], base=dict(d.get("base") or {}), grid=dict(grid),
                   zip=[dict(g) for g in zips], seeds=seeds, figures=figures)

    def axis_keys(self) -> list[str]:
        """Every key that varies over the sweep, in column order."""
        keys = list(self.grid) + [k for g in self.zip for k in g]
        return keys + ([SEED] if self.seeds is not None else [])

    def name_keys(self) -> list[str]:
        """The keys that name a point's folder: :meth:`axis_keys` less a zipped key whose values repeat an
        earlier key's of its group (``sweep_depths`` and ``depths`` zipped to the same lists name it once)."""
        keys = list(self.grid)
        for g in self.zip:
            seen: list[Any] = []
            for k, values in g.items():
                if values not in seen:
                    keys.append(k)
                    seen.append(values)
        return keys + ([SEED] if self.seeds is not None else [])


@dataclass(frozen=True)
class Point:
    """One point of a sweep: its index in the enumeration, the values of the varying keys (as given) and
    its validated spec."""

    index: int
    axes: dict[str, Any]
    spec: ExperimentSpec


# ------------------------------------------------------------------------------------------ parsing
def split_values(text: str) -> list[str]:
    """Split ``a,b,c`` on the commas outside brackets and quotes: ``[1,2],[3]`` is two values."""
    out, cur, depth, quote = [], [], 0, None
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            cur.append(ch)
        elif ch in "[{(":
            depth += 1
            cur.append(ch)
        elif ch in "]})":
            depth -= 1
            cur.append(ch)
        elif ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [v.strip() for v in out]


def parse_axis(text: str) -> tuple[str, list[Any]]:
    """``--grid KEY=A,B,C`` → ``(KEY, [A, B, C])``, each value read like a ``--set`` value (JSON, else text)."""
    if "=" not in text:
        raise GnndynError(f"--grid expects KEY=V1,V2,... (e.g. model.depth=5,10,20); got {text!r}.")
    key, rest = text.split("=", 1)
    key = key.strip()
    values = split_values(rest)
    if not key or any(v == "" for v in values):
        raise GnndynError(f"--grid {text!r} has an empty key or value; write KEY=V1,V2,... with no empty entries.")
    return key, [parse_value(v) for v in values]


def parse_set(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` options → ``{KEY: value}``."""
    out: dict[str, Any] = {}
    for o in items:
        if "=" not in o:
            raise GnndynError(f"--set expects key=value (e.g. model.depth=20); got {o!r}.")
        k, v = o.split("=", 1)
        out[k.strip()] = parse_value(v.strip())
    return out


def _flatten(d: Any, where: str, prefix: str = "", *, leaf_lists: bool = False) -> dict[str, Any]:
    """Nested mappings → dotted keys (``{model: {depth: 3}}`` → ``{"model.depth": 3}``)."""
    if not isinstance(d, dict):
        raise GnndynError(f"{where} must be a mapping of KEY: VALUE; got {type(d).__name__} {d!r}.")
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, where, key + ".", leaf_lists=leaf_lists))
        else:
            out[key] = v
    return out


def _axis_list(key: str, values: Any, where: str) -> list[Any]:
    if not isinstance(values, list) or not values:
        raise GnndynError(f"{where} axis {key!r} must be a non-empty list of values; got {values!r}.")
    return list(values)


def _seed_list(seeds: Any, where: str) -> list[int] | None:
    if seeds is None:
        return None
    if isinstance(seeds, bool) or not (isinstance(seeds, int) or isinstance(seeds, list)):
        raise GnndynError(f"{where}: seeds must be a count N (seeds 0..N-1) or a list of seeds; got {seeds!r}.")
    if isinstance(seeds, int):
        if seeds < 1:
            raise GnndynError(f"{where}: seeds must be at least 1; got {seeds}.")
        return list(range(seeds))
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise GnndynError(f"{where}: a list of seeds must hold non-negative integers; got {seeds!r}.")
    return list(seeds)


def read_sweep_file(path: str | Path) -> dict[str, Any]:
    """Read a sweep file (``.yaml``/``.yml`` with ``yaml.safe_load``, ``.toml`` with ``tomllib``: neither
    executes anything) into the plain mapping :func:`config_from_mapping` takes."""
    p = Path(path)
    if not p.is_file():
        raise GnndynError(f"no sweep file at {p}: give a .yaml, .yml or .toml file.")
    suffix = p.suffix.lower()
    text = p.read_text()
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise GnndynError("reading a YAML sweep file needs PyYAML: pip install pyyaml (or use a .toml file).") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise GnndynError(f"{p} is not valid YAML: {exc}") from None
    elif suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise GnndynError(f"{p} is not valid TOML: {exc}") from None
    else:
        raise GnndynError(f"a sweep file must end in .yaml, .yml or .toml; got {p.name!r}.")
    if not isinstance(data, dict):
        raise GnndynError(f"{p} must hold a mapping with keys {', '.join(FILE_KEYS)}; got {type(data).__name__}.")
    return data


def config_from_mapping(data: dict[str, Any], *, where: str = "sweep file") -> dict[str, Any]:
    """Check a sweep file's mapping and normalize it (dotted keys, seed list)."""
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise GnndynError(f"{where} has unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(FILE_KEYS)}.")
    grid = {k: _axis_list(k, v, where + " grid") for k, v in _flatten(data.get("grid") or {}, where + " grid").items()}
    zips = data.get("zip") or []
    if isinstance(zips, dict):
        zips = [zips]
    if not isinstance(zips, list):
        raise GnndynError(f"{where} zip must be a list of groups (each a mapping KEY: [values]); got {zips!r}.")
    groups = []
    for i, g in enumerate(zips):
        group = {k: _axis_list(k, v, f"{where} zip group {i}") for k, v in _flatten(g, f"{where} zip group {i}").items()}
        groups.append(group)
    figures = data.get("figures", True)
    if not isinstance(figures, bool):
        raise GnndynError(f"{where}: figures must be true or false; got {figures!r}.")
    return {"experiment": data.get("experiment"), "base": _flatten(data.get("base") or {}, where + " base"),
            "grid": grid, "zip": groups, "seeds": _seed_list(data.get("seeds"), where), "figures": figures}


def build_config(experiment: str | None, *, file: str | Path | None = None, grid: list[str] | None = None,
                 sets: list[str] | None = None, seeds: int | None = None, figures: bool | None = None) -> SweepConfig:
    """A :class:`SweepConfig` from the command line, a sweep file, or both (the command line adds axes and
    base overrides to the file's; a key given twice is an error). A seed count (``--seeds N`` or the file's
    ``seeds: N``) runs from the base's seed on: the base's ``seed`` S becomes the seed axis S, ..., S+N-1."""
    raw = read_sweep_file(file) if file else {}
    fdata = config_from_mapping(raw, where=str(file)) if file else config_from_mapping({})
    exp = experiment or fdata["experiment"]
    if not exp:
        raise GnndynError("which experiment? Give EXPERIMENT on the command line or `experiment:` in the sweep file "
                          "(`gnndyn list` names them).")
    if experiment and fdata["experiment"] and experiment != fdata["experiment"]:
        raise GnndynError(f"the command line names experiment {experiment!r} but {file} names {fdata['experiment']!r}.")
    axes = dict(fdata["grid"])
    for text in grid or []:
        k, v = parse_axis(text)
        if k in axes:
            raise GnndynError(f"axis {k!r} is given twice; give each grid key once.")
        axes[k] = v
    cli_base = parse_set(sets or [])
    base = {**fdata["base"], **cli_base}
    seed_list = fdata["seeds"]
    count = isinstance(raw.get("seeds"), int)  # a file's `seeds: N` is a count; a list names the seeds
    if seeds is not None:
        if seed_list is not None:
            raise GnndynError(f"seeds are given both by --seeds and in {file}; give them once.")
        seed_list, count = _seed_list(seeds, "--seeds"), True
    if seed_list is not None and SEED in base:
        where = f"--set seed={cli_base[SEED]}" if SEED in cli_base else f"`seed: {base[SEED]}` in the base of {file}"
        start = base.pop(SEED)
        if not count:
            raise GnndynError(f"the seed is given twice: by {where} and by the list of seeds {seed_list} in {file}; "
                              f"give it once (a list names every seed; `seeds: N` runs N seeds from the base's seed on).")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise GnndynError(f"{where}: the seed must be a non-negative integer (the first seed of the seed axis); "
                              f"got {start!r}.")
        seed_list = [start + s for s in seed_list]
    cfg = SweepConfig(experiment=exp, base=base, grid=axes, zip=fdata["zip"], seeds=seed_list,
                      figures=fdata["figures"] if figures is None else figures)
    check_config(cfg)
    return cfg


def check_config(cfg: SweepConfig) -> None:
    """Structural checks: every key once, zipped lists of one length, seeds not also a grid axis or a base
    override."""
    seen: dict[str, str] = {}
    for where, keys in [("grid", list(cfg.grid))] + [(f"zip group {i}", list(g)) for i, g in enumerate(cfg.zip)]:
        for k in keys:
            if k in seen:
                raise GnndynError(f"key {k!r} appears in both {seen[k]} and {where}; a key varies on one axis only.")
            seen[k] = where
    for i, g in enumerate(cfg.zip):
        lengths = {k: len(v) for k, v in g.items()}
        if len(set(lengths.values())) > 1:
            raise GnndynError(f"zip group {i} needs lists of one length; got {lengths}.")
    if cfg.seeds is not None and SEED in seen:
        raise GnndynError(f"'seed' is both a {seen[SEED]} axis and the seed axis (--seeds); give it once.")
    if cfg.seeds is not None and SEED in cfg.base:
        raise GnndynError(f"'seed' is both a base override (seed={cfg.base[SEED]!r}) and the seed axis "
                          f"(seeds {cfg.seeds}), which would replace it at every point; give it once.")
    both = sorted(set(cfg.base) & set(seen))
    if both:
        raise GnndynError(f"key(s) {', '.join(both)} are both base overrides and sweep axes; give each once.")


# ------------------------------------------------------------------------------------------ expansion
def enumerate_axes(cfg: SweepConfig) -> list[dict[str, Any]]:
    """The axis values of every point, in the sweep's fixed order (the last axis fastest)."""
    factors: list[list[dict[str, Any]]] = [[{k: v} for v in vals] for k, vals in cfg.grid.items()]
    for g in cfg.zip:
        keys = list(g)
        n = len(g[keys[0]]) if keys else 0
        factors.append([{k: g[k][i] for k in keys} for i in range(n)])
    if cfg.seeds is not None:
        factors.append([{SEED: s} for s in cfg.seeds])
    out = []
    for combo in itertools.product(*factors):
        d: dict[str, Any] = {}
        for part in combo:
            d.update(part)
        out.append(d)
    return out


def expand(cfg: SweepConfig) -> list[Point]:
    """Every point with its validated spec. Nothing is written; the first invalid point raises a
    :class:`GnndynError` naming the point and (for a bad key) the valid keys."""
    from gnndyn.experiments.base import get_experiment, make_spec
    from gnndyn.sweep.identity import canonical

    exp = get_experiment(cfg.experiment)
    check_config(cfg)
    try:
        make_spec(exp.name, cfg.base)
    except GnndynError as exc:
        raise GnndynError(f"the sweep's base overrides are invalid: {exc}") from None
    points, seen = [], {}
    for i, axes in enumerate(enumerate_axes(cfg)):
        try:
            spec = make_spec(exp.name, {**cfg.base, **axes})
        except GnndynError as exc:
            desc = ", ".join(f"{k}={json.dumps(v)}" for k, v in axes.items())
            raise GnndynError(f"sweep point {i} ({desc}) is invalid: {exc}") from None
        key = canonical(spec)
        if key in seen:
            raise GnndynError(f"sweep points {seen[key]} and {i} have the same spec ({axes}); remove the duplicate value.")
        seen[key] = i
        points.append(Point(index=i, axes=axes, spec=spec))
    if not points:
        raise GnndynError("the sweep has no points: every axis needs at least one value.")
    return points
