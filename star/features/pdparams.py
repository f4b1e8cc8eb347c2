"""Encoder weights read without running code: a `.pdparams` by a restricted unpickler, or a `.safetensors`.

A PaddleVideo `.pdparams` is a pickle of {name: ndarray} (FACTS: `paddle.save` of a state dict), and a pickle can
name any callable to run while it loads. `read_pdparams` admits only what such a file needs to rebuild numpy arrays
(numpy's array reconstructor, ndarray, dtype) and plain containers; any other global (os.system, a class, ...) is
refused with an error naming the file before anything runs. Object arrays are refused too.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np

from star.errors import InputError

# (module, name) a .pdparams may reference; numpy 2 pickles name numpy._core, numpy 1 numpy.core
ALLOWED = {
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
    ("_codecs", "encode"),   # protocol-2 pickles carry bytes as latin-1 text turned back by it
}


class UnsafeWeightsError(InputError):
    """A weights file that would run code, or holds something other than named arrays."""


class ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: only numpy arrays and plain containers "
                                     "are admitted")


def read_pdparams(path: str | Path) -> dict:
    """{name: ndarray | nested container} of a `.pdparams`, unpickled without running code."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            state = ArraysOnly(fh).load()
    except pickle.UnpicklingError as exc:
        if "refused" in str(exc):
            raise UnsafeWeightsError(f"{path}: {exc} (the file would run code when unpickled; not loaded)") from None
        raise
    check_plain(state, path)
    return state


def check_plain(value, path: Path, where: str = "") -> None:
    """Only dicts, lists, tuples, strings, numbers and non-object numeric arrays."""
    if isinstance(value, (dict, OrderedDict)):
        for key, item in value.items():
            check_plain(item, path, f"{where}/{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_plain(item, path, f"{where}/{i}")
    elif isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":   # no object, string, void or complex arrays
            raise UnsafeWeightsError(f"{path}: {where or 'the file'} is a {value.dtype} array, not numbers")
    elif not isinstance(value, (str, bytes, int, float, bool, np.generic, type(None))):
        raise UnsafeWeightsError(f"{path}: {where or 'the file'} holds a {type(value).__name__}")


def read_safetensors(path: str | Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(path))
