"""A pickle reader that cannot run code: only the classes named in an allow-list are ever created.

``pickle.load`` calls whatever callable a file names (``os.system``, ``builtins.exec``…), so a crafted
data file runs code on load. :func:`safe_load` uses an :class:`pickle.Unpickler` whose ``find_class``
returns only allow-listed objects and refuses every other name with
:class:`~gnndyn.errors.UnsafeFileError` naming the file and the class, before anything is called.
No other opcode of the pickle protocol can call code: ``REDUCE``, ``BUILD``, ``NEWOBJ`` and ``INST``
all act on objects that ``find_class`` had to return first.
"""

from __future__ import annotations

import collections
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gnndyn.errors import CorruptFileError, UnsafeFileError


def _numpy_reconstruct():
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    return core.multiarray._reconstruct


def _csr():
    import scipy.sparse

    return scipy.sparse.csr_matrix


def _np(name: str):
    import numpy as np

    return getattr(np, name)


#: (module, name) as written in the pickle → a function giving the object to admit. These are exactly
#: the classes the Planetoid raw files hold (numpy arrays and dtypes, SciPy CSR matrices, lists and
#: defaultdicts of lists), under their Python 2 and Python 3 module names.
PLANETOID_CLASSES: Mapping[tuple[str, str], Any] = {
    ("numpy", "ndarray"): lambda: _np("ndarray"),
    ("numpy", "dtype"): lambda: _np("dtype"),
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("scipy.sparse.csr", "csr_matrix"): _csr,
    ("scipy.sparse._csr", "csr_matrix"): _csr,
    ("collections", "defaultdict"): lambda: collections.defaultdict,
    ("__builtin__", "list"): lambda: list,
    ("builtins", "list"): lambda: list,
    ("__builtin__", "dict"): lambda: dict,
    ("builtins", "dict"): lambda: dict,
}


class _Restricted(pickle.Unpickler):
    def __init__(self, f, path: Path, allowed: Mapping[tuple[str, str], Any]):
        super().__init__(f, encoding="latin1")
        self.path, self.allowed = path, allowed

    def find_class(self, module: str, name: str) -> Any:
        make = self.allowed.get((module, name))
        if make is None:
            raise UnsafeFileError(
                self.path, f"the pickle asks for {module}.{name}, which is not among the classes such a file holds "
                           f"({', '.join(sorted({f'{m}.{n}' for m, n in self.allowed}))}); it was refused and nothing "
                           f"in the file was run",
                "do not use this file: replace it with a fresh copy of the original data (it may have been "
                "tampered with)")
        return make()


def safe_load(path: str | Path, allowed: Mapping[tuple[str, str], Any] = PLANETOID_CLASSES) -> Any:
    """Unpickle ``path`` admitting only the ``allowed`` classes (see the module docstring).

    Raises:
        UnsafeFileError: the file names a class or function outside ``allowed``.
        CorruptFileError: the file is truncated or not a pickle.
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            return _Restricted(f, p, allowed).load()
    except CorruptFileError:
        raise
    except Exception as exc:  # noqa: BLE001  (EOFError, UnpicklingError, ValueError… of a damaged file)
        raise CorruptFileError(p, f"not a readable pickle ({type(exc).__name__}: {exc})") from None
