"""Progress of a command's long steps, on stderr.

A step reports ``(step, done, total)`` as it goes (``backend.batching.Progress``). ``StepProgress``
shows only the steps that run past ``after`` seconds, so a quick command stays quiet and its error,
if any, stays one line: on a terminal one line refreshed in place, in a log one line when the step
ends.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class StepProgress:
    """``progress(step, done, total)`` printer: ``<prefix>: <step> <done>/<total> <unit> (<seconds> s)``."""

    def __init__(
        self,
        prefix: str,
        stream: TextIO | None = None,
        after: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        units: dict[str, str] | None = None,
    ) -> None:
        self.prefix = prefix
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.after = after
        self.clock = clock
        self.units = units or {}
        self.step: str | None = None
        self.start = 0.0
        self.shown = False  # the current step's line is on a terminal, unfinished

    def __call__(self, step: str, done: int, total: int) -> None:
        now = self.clock()
        if step != self.step:
            self._end_line()
            self.step, self.start = step, now
        elapsed = now - self.start
        if elapsed < self.after:
            return
        unit = self.units.get(step, "")
        text = f"{self.prefix}: {step} {done:,}/{total:,}{' ' + unit if unit else ''} ({elapsed:.1f} s)"
        finished = done >= total
        if self.tty:
            print(f"\r{text}\x1b[K", end="\n" if finished else "", file=self.stream, flush=True)
            self.shown = not finished
        elif finished:
            print(text, file=self.stream, flush=True)
        if finished:
            self.step = None

    def _end_line(self) -> None:
        if self.shown:
            print(file=self.stream, flush=True)
            self.shown = False

    def close(self) -> None:
        """End an unfinished terminal line (an error comes next)."""
        self._end_line()
