"""CIFAR python files pickled as the official archives were, written by the tests themselves.

The official cifar-10-batches-py and cifar-100-python files were pickled by Python 2's
cPickle at protocol 2: every string (dict keys, labels, file names, and numpy's array
buffer) is a Python 2 `str`, written with the (SHORT_)BINSTRING opcodes, and the array
is rebuilt through numpy 1's module paths, numpy.core.multiarray._reconstruct. Python 3's
pickle at protocol 2 writes bytes as _codecs.encode calls and numpy 2 names numpy._core
instead, so this pickler writes bytes as Python 2 strings and names numpy.core. Keys and
strings are given as bytes (as Python 2 held them).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

# The official files' globals: nothing else may appear in them.
OFFICIAL_GLOBALS = {"numpy.core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype"}


class Python2Pickler(pickle._Pickler):  # the pure-Python pickler: its dispatch can be extended
    """Protocol 2 as Python 2's cPickle wrote a dict of str and numpy arrays."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_python2_str(self, obj: bytes) -> None:
        size = len(obj)
        if size < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([size]) + obj)
        else:
            self.write(pickle.BINSTRING + size.to_bytes(4, "little") + obj)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str

    def save_global(self, obj, name=None) -> None:
        module = getattr(obj, "__module__", None)
        if module and module.startswith("numpy._core"):  # numpy 2; numpy 1 named numpy.core
            name = name or obj.__qualname__
            self.write(pickle.GLOBAL + f"numpy.core{module[len('numpy._core'):]}\n{name}\n"
                       .encode("ascii"))
            self.memoize(obj)
            return
        super().save_global(obj, name)


def official_pickle(entry: dict) -> bytes:
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(entry)
    return buffer.getvalue()


def write_official_cifar10(root: Path, train_per_file: int = 10, test_count: int = 20,
                           seed: int = 0) -> Path:
    """cifar-10-batches-py under root, each file pickled as the official ones; return the
    folder."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def batch(label: str, count: int) -> dict:
        return {b"batch_label": label.encode(),
                b"labels": [int(value) for value in rng.integers(0, 10, count)],
                b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
                b"filenames": [b"image_%d.png" % index for index in range(count)]}

    for index in range(1, 6):
        (folder / f"data_batch_{index}").write_bytes(
            official_pickle(batch(f"training batch {index} of 5", train_per_file)))
    (folder / "test_batch").write_bytes(official_pickle(batch("testing batch 1 of 1",
                                                              test_count)))
    (folder / "batches.meta").write_bytes(official_pickle(
        {b"label_names": [b"class%d" % index for index in range(10)],
         b"num_cases_per_batch": train_per_file, b"num_vis": 3072}))
    return folder
