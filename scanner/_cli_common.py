"""What the ``norefusal`` subcommands share: scanner options, progress on a terminal, output files.

A subcommand that scans (``scan``, ``eval``, ``audit``) takes the scanner's options from
:func:`add_scanner_options` and builds its scanner with :func:`scanner_from_args`; a long loop
(``scan``, ``eval``, ``audit``, ``train``) reports through :func:`progress`; a command that
writes a results file writes it whole through :class:`AtomicOutput`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from ._errors import NoRefusalError
from ._scanner import NoRefusalScanner

__all__ = ["AtomicOutput", "add_scanner_options", "progress", "scanner_from_args"]


def add_scanner_options(parser: argparse.ArgumentParser) -> None:
    """Add the scanner's options: ``--model``, ``--backend``, ``--threshold``, ``--match``, etc."""
    group = parser.add_argument_group("scanner")
    group.add_argument(
        "--model",
        default="default",
        metavar="NAME",
        help="preset (`norefusal presets`), Hugging Face id or directory (default: embedded)",
    )
    group.add_argument(
        "--backend",
        choices=("onnx", "transformers", "keyword"),
        default=None,
        help="inference backend (default: the model's own)",
    )
    group.add_argument(
        "--threshold",
        type=float,
        default=None,
        metavar="T",
        help="a score above T is a refusal; in (0, 1) (default: the model's calibrated one)",
    )
    group.add_argument(
        "--match",
        choices=("full", "sentence"),
        default="full",
        help="score the whole output, or each sentence and keep the highest (default: %(default)s)",
    )
    group.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        metavar="N",
        help="tokens read of a long output, its head and tail (default: the model's)",
    )
    group.add_argument(
        "--device",
        default=None,
        help="torch device of the transformers backend, e.g. cuda:0 (default: cpu)",
    )


def scanner_from_args(args: argparse.Namespace) -> NoRefusalScanner:
    """The scanner the options of :func:`add_scanner_options` describe."""
    return NoRefusalScanner(
        threshold=args.threshold,
        model=args.model,
        backend=args.backend,
        match=args.match,
        max_tokens=args.max_tokens,
        device=args.device,
    )


def _ignore(_: int) -> None:
    return None


@contextlib.contextmanager
def progress(
    total: int | None, *, desc: str, unit: str = "row"
) -> Iterator[Callable[[int], object]]:
    """A progress bar on standard error for a command's long loop; yields ``update(n)``.

    The bar (tqdm) is drawn only when standard error is a terminal and tqdm is installed (the
    ``train`` and ``dev`` extras bring it): piped or redirected output stays clean, and without
    tqdm ``update`` does nothing. For commands only: library calls never draw progress, since a
    server or a notebook decides what goes to its terminal.

    Args:
        total: the number of units the loop will do, or ``None`` when unknown (a counter).
        desc: what is being done, shown before the bar (e.g. ``"scanning"``).
        unit: what one unit is (e.g. ``"row"``, ``"step"``).
    """
    if not sys.stderr.isatty():
        yield _ignore
        return
    try:
        from tqdm import tqdm
    except ImportError:
        yield _ignore
        return
    with tqdm(
        total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True
    ) as bar:
        yield bar.update


class AtomicOutput:
    """Standard output, or a file written whole: a temporary file renamed into place at the end.

    On an error nothing is left behind: neither a half-written file nor the temporary one.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._tmp: IO[str] | None = None
        self._tmp_name = ""

    def __enter__(self) -> IO[str]:
        if self._path is None:
            return sys.stdout
        try:
            fd, self._tmp_name = tempfile.mkstemp(
                dir=self._path.parent, prefix=f".{self._path.name}.", suffix=".part"
            )
        except OSError as exc:
            raise NoRefusalError(f"Cannot write {self._path}: {exc.strerror or exc}.") from None
        self._tmp = os.fdopen(fd, "w", encoding="utf-8")
        return self._tmp

    def __exit__(self, exc_type: object, *_: object) -> None:
        if self._tmp is None or self._path is None:
            return
        self._tmp.close()
        if exc_type is None:
            try:
                os.replace(self._tmp_name, self._path)
            except OSError as exc:
                os.unlink(self._tmp_name)
                raise NoRefusalError(f"Cannot write {self._path}: {exc.strerror or exc}.") from None
        else:
            os.unlink(self._tmp_name)
