"""Reading JSON Lines input files, with one wording and one rule for every command's input faults.

Every ``norefusal`` command that reads rows (``scan``, ``eval``, ``train``, ``bench``) reads
them here, so the same fault reads the same everywhere: a file that cannot be opened, a file
with no rows, a line that is not UTF-8, not JSON or not an object. Each is an
:class:`InputFileError` that names the file, and the line where there is one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._errors import NoRefusalError
from ._text import split_conversation

__all__ = ["InputFileError", "iter_objects", "read_pairs"]


class InputFileError(NoRefusalError, ValueError):
    """An input file cannot be used; the message names the file, and the line of a bad row."""


def iter_objects(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, row)`` for each non-blank line of ``path``.

    Raises:
        InputFileError: the file cannot be read (``"Cannot read FILE: No such file or
            directory."``), holds no rows (``"FILE holds no rows."``), or a line is not UTF-8,
            not valid JSON or not a JSON object (``"FILE, line N: ..."``).
    """
    path = Path(path)
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputFileError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    rows = 0
    with fh:
        for number, raw in enumerate(fh, start=1):
            try:
                # utf-8-sig on the first line: an editor's byte-order mark is not a fault.
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise InputFileError(f"{path}, line {number}: not UTF-8 text.") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InputFileError(f"{path}, line {number}: invalid JSON ({exc}).") from None
            if not isinstance(row, dict):
                raise InputFileError(f"{path}, line {number}: a row must be a JSON object.")
            rows += 1
            yield number, row
    if not rows:
        raise InputFileError(f"{path} holds no rows (one JSON object per line).")


def read_pairs(path: str | Path) -> Iterator[tuple[Any, str, str]]:
    """Yield ``(id, prompt, output)`` from rows with ``prompt``/``response`` or ``messages``.

    A row's ``id`` defaults to its line number; ``output`` is accepted for ``response``.

    Raises:
        InputFileError: as :func:`iter_objects`, or a row has neither shape (naming its line).
    """
    for number, row in iter_objects(path):
        row_id = row.get("id", number)
        if "messages" in row:
            try:
                prompt, output = split_conversation(row["messages"])
            except (TypeError, ValueError) as exc:
                raise InputFileError(f"{path}, line {number}: bad 'messages' ({exc}).") from None
        elif "response" in row or "output" in row:
            raw_output = row.get("response", row.get("output"))
            raw_prompt = row.get("prompt") or ""
            if not isinstance(raw_output, str) or not isinstance(raw_prompt, str):
                raise InputFileError(
                    f"{path}, line {number}: 'response' and 'prompt' must be strings."
                )
            prompt, output = raw_prompt, raw_output
        else:
            raise InputFileError(
                f"{path}, line {number}: a row needs 'response' (and 'prompt') or 'messages'."
            )
        yield row_id, prompt or "", output
