"""The US-counties climate graph (Patel, Savostianov & Schaub, arXiv 2501.14440, §6.2, Fig. 8).

Nodes are the 3107 counties of the contiguous US present both in the US Census county adjacency file
(2010 vintage) and in the five CDC WONDER NASA-NLDAS exports; an edge joins two counties that share
a border (9230 undirected edges, one connected component). Files, in ``<root>/climate/`` or
``<root>/`` (Latin-1, tab-separated; CRLF or LF line ends):

* ``adjacency.txt``: county name, FIPS, neighbour name, neighbour FIPS; the first two columns are
  blank on continuation lines (forward-filled here); self-loops are listed and dropped;
* one CDC WONDER export per measure, header ``"Notes" "County" "County Code" "Year" "Year Code"
  <measure>``, one row per county and year 2003–2008 (see :data:`MEASURES` for the file names).

The root is ``data_root`` if given, else ``$GNNDYN_DATA_ROOT``, else ``~/.cache/gnndyn``; nothing is
ever written there. The source copy (GitHub 000Justin000/GaussianMRF, ``datasets/climate/``) and the
files' sha256 sums are listed in the shared datasets README.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnndyn.data.graph import Graph, canonical_edge_index
from gnndyn.data.planetoid import ENV_VAR
from gnndyn.errors import GnndynError, MachineError, Option, resolve

#: measure name -> file name (``percipitation.txt`` is the source's spelling).
MEASURES: dict[str, str] = {
    "max-air-temperature": "max_air_temperature.txt",
    "land-surface-temperature": "land_surface_temperature.txt",
    "precipitation": "percipitation.txt",
    "sunlight": "sunlight.txt",
    "fine-particulate-matter": "fine_particulate_matter.txt",
}
UNITS = {
    "max-air-temperature": "°C (avg daily max air temperature)",
    "land-surface-temperature": "°C (avg day land surface temperature)",
    "precipitation": "mm (avg daily precipitation)",
    "sunlight": "KJ/m² (avg daily sunlight)",
    "fine-particulate-matter": "µg/m³ (avg fine particulate matter)",
}
ADJACENCY_FILE = "adjacency.txt"
YEARS: tuple[int, ...] = (2003, 2004, 2005, 2006, 2007, 2008)


def climate_root(data_root: str | os.PathLike | None = None) -> Path:
    """The root folder: ``data_root``, else ``$GNNDYN_DATA_ROOT``, else ``~/.cache/gnndyn``."""
    if data_root is not None:
        return Path(data_root).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path.home() / ".cache" / "gnndyn"


def find_climate_dir(data_root: str | os.PathLike | None = None) -> Path:
    """The first of ``<root>/climate/`` and ``<root>/`` that holds all six files, or a clear error."""
    root = climate_root(data_root)
    needed = [ADJACENCY_FILE, *MEASURES.values()]
    looked = []
    for folder in (root / "climate", root):
        missing = [f for f in needed if not (folder / f).is_file()]
        if not missing:
            return folder
        looked.append(f"{folder} (missing: {', '.join(missing)})")
    raise MachineError(
        "cannot load us-climate: no folder holds all of " + ", ".join(needed) + ". Looked in "
        + "; ".join(looked) + ". Point ", Option("data_root"), f" (or ${ENV_VAR}) at a folder holding climate/ "
        "with these files (CDC WONDER NASA-NLDAS exports and the US Census county adjacency file)."
    )


def _lines(path: Path) -> list[str]:
    return path.read_bytes().decode("latin-1").splitlines()


def _unquote(s: str) -> str:
    s = s.strip()
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


def read_adjacency(path: Path) -> np.ndarray:
    """County border pairs as a ``(2, E)`` int64 array of FIPS codes (continuation lines forward-filled,
    self-loops kept; both directions as listed in the file)."""
    pairs: list[tuple[int, int]] = []
    current: int | None = None
    for k, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        f = line.split("\t")
        if len(f) < 4:
            raise GnndynError(f"{path}:{k}: expected 4 tab-separated columns (name, FIPS, neighbour, FIPS); got {line!r}.")
        try:
            if _unquote(f[1]):
                current = int(_unquote(f[1]))
            if current is None:
                raise GnndynError(f"{path}:{k}: a continuation line before any county line.")
            pairs.append((current, int(_unquote(f[3]))))
        except ValueError as exc:
            raise GnndynError(f"{path}:{k}: a FIPS code is not an integer ({exc}); line {line!r}.") from exc
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2).T


def read_measure(path: Path) -> dict[tuple[int, int], float]:
    """One CDC WONDER export as ``{(FIPS, year): value}``; note and total rows (a non-empty "Notes"
    column) are skipped, and values such as ``Missing`` become NaN."""
    lines = _lines(path)
    head = [_unquote(h) for h in lines[0].split("\t")] if lines else []
    if head[:5] != ["Notes", "County", "County Code", "Year", "Year Code"] or len(head) < 6:
        raise GnndynError(
            f"{path} is not a CDC WONDER county-by-year export: expected the header Notes, County, County Code, "
            f"Year, Year Code, <measure>; got {head[:6]}."
        )
    out: dict[tuple[int, int], float] = {}
    for line in lines[1:]:
        f = line.replace('"', "").split("\t")
        if len(f) < 6 or f[0] or not f[2] or not f[3]:
            continue
        try:
            value = float(f[5])
        except ValueError:
            value = float("nan")
        out[(int(f[2]), int(f[3]))] = value
    return out


def _years(year: int | str | list[int]) -> list[int]:
    if isinstance(year, str) and year.lower() == "all":
        return list(YEARS)
    if isinstance(year, str) and year.strip().isdigit():  # "2008" as typed on a command line
        year = int(year)
    ys = [year] if isinstance(year, (int, np.integer)) else list(year) if isinstance(year, (list, tuple)) else None
    if ys is None or not ys or any(not isinstance(y, (int, np.integer)) or y not in YEARS for y in ys):
        raise GnndynError(
            f"us-climate: year must be one of {YEARS[0]}..{YEARS[-1]}, a list of them, or 'all'; got {year!r}."
        )
    return [int(y) for y in ys]


def load_us_climate(
    data_root: str | os.PathLike | None = None,
    *,
    year: int | str | list[int] = 2008,
    label: str = "max-air-temperature",
    zscore: bool = True,
) -> Graph:
    """The US-counties climate graph with annual climate measures as node features and a regression target.

    Patel et al. (§6.2) use land surface temperature, precipitation, sunlight and fine particulate
    matter as features and air temperature as the label, each standardized. ``x`` has one column per
    (feature measure, year), measure-major (4 columns for one year, 24 for ``year="all"``); ``y`` is
    the float ``(n, d_y)`` target, one column per year of the ``label`` measure. Column names are in
    ``meta["feature_names"]`` / ``meta["label_names"]``, county FIPS codes (node order: ascending
    FIPS) in ``meta["fips"]``.

    **Difference from the paper:** the paper used monthly values averaged over 2008 (4 measures × 12
    months = 48 features, 12 monthly air temperatures as labels, judging from its shapes
    W₁ ∈ R^{32×48}, W₃ ∈ R^{12×32}). Only annual values are available here, so one year gives
    d_x = 4, d_y = 1 and all six years d_x = 24, d_y = 6.

    Args:
        data_root: folder holding ``climate/`` (or the files themselves); see the module docstring.
        year: 2003..2008 (default 2008, the paper's year), a list of years, or ``"all"``.
        label: the measure used as target (default ``max-air-temperature``); the other four are features.
        zscore: standardize every feature and label column to mean 0, standard deviation 1 over the
            counties (population std); the raw means and stds are kept in ``meta``.
    """
    label_key = resolve("measure", label, {k: k for k in MEASURES})
    years = _years(year)
    folder = find_climate_dir(data_root)
    pairs = read_adjacency(folder / ADJACENCY_FILE)
    values = {m: read_measure(folder / f) for m, f in MEASURES.items()}
    counties = set(np.unique(pairs).tolist())
    for table in values.values():
        have = {c for (c, y), v in table.items() if y in years and np.isfinite(v)}
        counties &= {c for c in have if all(np.isfinite(table.get((c, y), np.nan)) for y in years)}
    fips = np.array(sorted(counties), dtype=np.int64)
    if fips.size == 0:
        raise GnndynError(f"us-climate: no county has all measures for years {years} and a row in {ADJACENCY_FILE}.")
    index = {int(c): i for i, c in enumerate(fips)}
    keep = np.array([a in index and b in index for a, b in pairs.T.tolist()], dtype=bool)
    ei = np.array([[index[int(c)] for c in row] for row in pairs[:, keep]], dtype=np.int64).reshape(2, -1)
    features = [m for m in MEASURES if m != label_key]

    def block(measures: list[str]) -> tuple[np.ndarray, list[str]]:
        cols, names = [], []
        for m in measures:
            for y in years:
                cols.append([values[m][(int(c), y)] for c in fips])
                names.append(f"{m}@{y}")
        return np.asarray(cols, dtype=np.float64).T, names

    x, x_names = block(features)
    y, y_names = block([label_key])
    meta: dict[str, Any] = {
        "dataset": "us-climate", "years": years, "label": label_key, "zscore": bool(zscore),
        "feature_names": x_names, "label_names": y_names, "units": {m: UNITS[m] for m in MEASURES},
        "fips": [f"{c:05d}" for c in fips.tolist()],
        "note": "annual CDC WONDER NASA-NLDAS values; the paper used monthly 2008 values (48 features, 12 labels)",
    }
    if zscore:
        for name, arr in (("x", x), ("y", y)):
            mu, sd = arr.mean(0), arr.std(0)
            if (sd == 0).any():
                raise GnndynError(f"us-climate: a constant {name} column cannot be z-scored; use zscore=false.")
            arr -= mu
            arr /= sd
            meta[f"{name}_mean"], meta[f"{name}_std"] = mu.tolist(), sd.tolist()
    n = int(fips.size)
    return Graph(
        edge_index=canonical_edge_index(torch.from_numpy(ei), n), num_nodes=n,
        x=torch.from_numpy(x), y=torch.from_numpy(y), name="us-climate", meta=meta,
    )
