"""How ``voyagent demo`` shows its progress: a bar per stage on a terminal, one plain line per stage otherwise.

The bar is tqdm's (a well-kept library does it better than a hand-written one); in a log file or CI output a
bar's carriage returns are noise, so there each stage writes one line when it ends.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Iterator, Protocol, TextIO

from tqdm import tqdm


class Step(Protocol):
    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units of the stage as done."""


class _Bar:
    def __init__(self, bar: tqdm) -> None:
        self.bar = bar

    def advance(self, n: int = 1) -> None:
        self.bar.update(n)


class _Count:
    def __init__(self) -> None:
        self.done = 0

    def advance(self, n: int = 1) -> None:
        self.done += n


class Progress:
    """``with progress.stage("enquiries", total=2400) as step: … step.advance()``."""

    def __init__(self, stream: TextIO | None = None, bar: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.bar = self.stream.isatty() if bar is None else bar

    @contextlib.contextmanager
    def stage(self, name: str, total: int) -> Iterator[Step]:
        started = time.monotonic()
        if self.bar:
            with tqdm(total=total, desc=f"{name:<13}", unit="", file=self.stream, leave=True,
                      bar_format="{desc} {bar} {n_fmt}/{total_fmt} [{elapsed}]") as bar:
                yield _Bar(bar)
            return
        count = _Count()
        yield count
        print(f"demo: {name}: {count.done} done in {time.monotonic() - started:.1f} s", file=self.stream, flush=True)

    def say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)
