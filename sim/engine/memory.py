"""How fentsim's large arrays get their memory: without numpy's transparent-huge-page advice.

numpy asks Linux to back each array of 4 MB or more with 2 MB transparent huge pages
(madvise(MADV_HUGEPAGE); numpy's docs, "madvise hugepage on Linux").  Where the kernel's THP
defrag setting is `madvise` (/sys/kernel/mm/transparent_hugepage/defrag, as on the 2-core
machines we measure on), the first write to such an array waits while the kernel compacts
memory to find a free huge page.  An ensemble's arrays are written once and read a few times,
so huge pages save little there, and that wait is what made a fresh process's first ensemble
slow and erratic (measured with `benchmarks/bench.py`: README, "Performance").

`ordinary_pages()` turns the advice off for the arrays made inside it (the integration and the
result dataset use it) and restores numpy's setting after.  Whoever sets numpy's own switch,
the environment variable NUMPY_MADVISE_HUGEPAGE, keeps numpy's choice.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

try:   # numpy 2
    from numpy._core import multiarray as _multiarray
except ImportError:   # numpy 1.26
    from numpy.core import multiarray as _multiarray

NUMPY_SWITCH = "NUMPY_MADVISE_HUGEPAGE"
# numpy's setter (returns the previous setting); absent on a numpy without the advice
_set_advice = getattr(_multiarray, "_set_madvise_hugepage", None)


@contextlib.contextmanager
def ordinary_pages() -> Iterator[None]:
    """Arrays made inside get ordinary pages (no huge-page advice), unless NUMPY_MADVISE_HUGEPAGE
    is set; numpy's setting is restored on leaving.  Usable as a decorator."""
    if _set_advice is None or os.environ.get(NUMPY_SWITCH) is not None:
        yield
        return
    previous = _set_advice(False)
    try:
        yield
    finally:
        _set_advice(previous)
