"""One thread per process for native libraries, set before they load.

tilewise runs one worker process per core, so a library that starts a thread
pool of its own in every worker only makes the workers fight for the cores.
OpenBLAS (under NumPy) and OpenMP size their pools from the environment when
they load, and OpenBLAS's idle threads spin for a while after loading: in a
worker, or in the fork server the workers come from, that spinning takes CPU
from the workers beside it. Dask sets the same variables for its workers
(``distributed.nanny.pre-spawn-environ``). A value the user has set is kept.

The fork server imports this module first, before NumPy; importing it is what
applies the limits (:func:`limit_native_threads` does it again, harmlessly).
"""

from __future__ import annotations

import os

__all__ = ["THREAD_VARIABLES", "limit_native_threads"]

#: Read by OpenMP, OpenBLAS and MKL when they load.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_native_threads() -> None:
    """Give native libraries loaded from now on one thread each, unless the user chose."""
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


limit_native_threads()
