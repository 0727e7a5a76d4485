"""Progress: tiles done of total, megapixels per second, time left.

Through ``tqdm.auto``: a widget in Jupyter, a bar on stderr in a terminal. While
the bar shows, console log lines (tilewise's warnings, the libraries') are
written through tqdm, above the bar, so they never tear it.
"""

from __future__ import annotations

import contextlib
import sys
import time
from types import TracebackType
from typing import Any

__all__ = ["Progress", "interactive"]


def interactive() -> bool:
    """Whether a person is watching: stderr is a terminal, or this is a Jupyter kernel."""
    ipython = sys.modules.get("IPython")
    if ipython is not None:
        shell = ipython.get_ipython()
        if shell is not None and hasattr(shell, "kernel"):
            return True
    return sys.stderr.isatty()


class Progress:
    """A tqdm bar counting units (tiles or files) and pixels; silent when disabled.

    ``enabled=None`` shows it when :func:`interactive`.
    """

    def __init__(
        self, total: int, *, unit: str = "tile", enabled: bool | None = True, desc: str = ""
    ) -> None:
        self._bar: Any = None
        self._pixels = 0
        self._start = time.monotonic()
        self._logging = contextlib.ExitStack()
        if enabled is None:
            enabled = interactive()
        self._unit = unit
        if enabled:
            from tqdm.auto import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            redirect: Any = logging_redirect_tqdm
            self._logging.enter_context(redirect(tqdm_class=tqdm))
            self._bar = tqdm(
                total=total,
                unit=unit,
                desc=desc or None,
                file=sys.stderr,
                dynamic_ncols=True,
                smoothing=0.1,
                mininterval=0.2,
            )

    def skip(self, count: int) -> None:
        """Count units finished by an earlier run."""
        if self._bar is not None and count:
            self._bar.update(count)
            self._bar.set_postfix_str(f"{count} already done", refresh=False)

    def advance(self, pixels: int = 0, *, failed: bool = False) -> None:
        """One unit finished (or failed)."""
        self._pixels += pixels
        if self._bar is None:
            return
        rate = self._pixels / 1e6 / max(time.monotonic() - self._start, 1e-9)
        self._bar.set_postfix_str(f"{rate:.0f} MPix/s" if self._pixels else "", refresh=False)
        if failed:
            self._bar.set_description_str("(with failures)", refresh=False)
        self._bar.update(1)

    def stalled(self, key: int, seconds: float, give_up: float) -> None:
        """Say on the bar that unit ``key`` has stalled and when it is given up."""
        if self._bar is not None:
            self._bar.set_postfix_str(
                f"{self._unit} {key} stalled ({seconds:.0f} s; retried at {give_up:.0f} s)"
            )

    def close(self) -> None:
        """Finish the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._logging.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
