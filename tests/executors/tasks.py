"""Picklable task functions for the executor conformance tests (imported by worker processes)."""

from __future__ import annotations

import os
from pathlib import Path


def square(x: int) -> int:
    return x * x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise RuntimeError("three is right out")
    return x


def fail_first_time(arg: tuple[int, str]) -> int:
    x, flag_dir = arg
    flag = Path(flag_dir) / f"seen-{x}"
    if x % 2 and not flag.exists():
        flag.write_text(str(os.getpid()))
        raise OSError(f"transient failure for {x}")
    return x
