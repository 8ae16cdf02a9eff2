"""Reading JSON Lines files whose rows are objects, with errors that name the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["iter_objects"]


def iter_objects(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, row)`` for each non-blank line of ``path``.

    Raises:
        ValueError: a line is not valid JSON or not a JSON object; the message names the file
            and the line (``"FILE, line N: ..."``).
        OSError: the file cannot be opened.
    """
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}, line {number}: invalid JSON ({exc}).") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}, line {number}: a row must be a JSON object.")
            yield number, row
