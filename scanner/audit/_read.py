"""Reading one input file into Arrow tables of texts to score, with unreadable rows marked.

Both engines run this same code: the local engine in its loop, the Ray engine in its read
tasks, so both see the same rows in the same order with the same errors. A row that cannot be
read becomes a row with ``error`` set (and nothing to score); rows of another shape than the
job's stop the job (:class:`ShapeError`), since they mean the input is not what it seems.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .._text import clean_text
from ._shapes import (
    RequestIndex,
    RowError,
    Shape,
    ShapeError,
    Turn,
    fields_of,
    shape_of,
    turns_of,
)
from ._sources import FileFormat, Source, iter_lines, iter_parquet

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "OUTPUT_COLUMNS",
    "TIMESTAMP_FIELDS",
    "ReadSpec",
    "detect_shape",
    "load_requests",
    "read_source",
]

#: Columns every results table has, besides the kept ones; a kept column may not reuse them.
OUTPUT_COLUMNS = (
    "source",
    "row",
    "turn",
    "model",
    "day",
    "score",
    "is_refusal",
    "signal",
    "detail",
    "error",
)
#: Where the ``day`` of a row comes from when no ``timestamp_field`` is given, first found.
TIMESTAMP_FIELDS = ("timestamp", "created_at", "created", "time", "date")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class ReadSpec:
    """What to read from each row; the same for every file of a job.

    Attributes:
        shape: the shape every row must have.
        keep: columns passed through to the results, as text.
        day: whether to derive the ``day`` (UTC, ``YYYY-MM-DD``) from a timestamp.
        timestamp_field: the field holding the timestamp; ``None`` tries
            :data:`TIMESTAMP_FIELDS`.
        batch_rows: rows per table handed on (and per Parquet read).
        shape_origin: where the shape was seen first, for the mixed-shapes error.
    """

    shape: Shape
    keep: tuple[str, ...] = ()
    day: bool = False
    timestamp_field: str | None = None
    batch_rows: int = 1024
    shape_origin: str = ""


_DECODE = json.JSONDecoder().decode


def _where(source: Source, row: int) -> str:
    unit = "line" if source.format is FileFormat.JSONL else "row"
    return f"{source.uri}, {unit} {row}"


def _clean(text: str) -> str:
    """``clean_text``, skipped for ASCII (most log text), which has no surrogates to clean."""
    return text if text.isascii() else clean_text(text)


def _as_text(value: object) -> str | None:
    """A kept value as text: strings as they are, ``None`` as null, anything else as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return clean_text(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))


def _day(value: object) -> str | None:
    """The UTC day of a timestamp: epoch seconds (or milliseconds), ISO 8601 text, a datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        seconds = value / 1000 if abs(value) > 1e11 else value  # milliseconds since the epoch
        return _epoch_day(int(seconds // 86400))
    if isinstance(value, str):
        text = value.strip()
        if "T" in text or " " in text:
            try:
                return _day(datetime.fromisoformat(text.replace("Z", "+00:00")))
            except ValueError:
                pass
        if _ISO_DAY.fullmatch(text[:10]):
            return text[:10]
    return None


@functools.lru_cache(maxsize=4096)
def _epoch_day(days: int) -> str | None:
    try:
        return (_EPOCH + timedelta(days=days)).isoformat()
    except OverflowError:
        return None


class _Table:
    """One output table, filled a record per output and turned into Arrow columns at the end.

    A record is ``(row, turn, prompt, output, provider, model, day, error, *kept)``: one tuple
    per output costs far less than a list append per column, in the loop every row goes through.
    """

    def __init__(self, source: Source, spec: ReadSpec) -> None:
        self._spec = spec
        self._uri = source.uri
        self._blank = (None,) * len(spec.keep)
        self.records: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self.records)

    def add_error(self, row: int, reason: str) -> None:
        self.records.append((row, None, None, None, None, None, None, reason, *self._blank))

    def _extras(self, fields: Mapping[str, Any]) -> tuple[str | None, str | None, tuple[Any, ...]]:
        spec = self._spec
        day = self._row_day(fields) if spec.day else None
        kept = tuple(_as_text(fields.get(name)) for name in spec.keep) if spec.keep else ()
        return _as_text(fields.get("model")), day, kept

    def add(self, row: int, turns: list[Turn], fields: Mapping[str, Any]) -> None:
        model, day, kept = self._extras(fields)
        for turn in turns:
            # Arrow needs valid UTF-8; the scanner cleans lone surrogates the same way.
            prompt, output = _clean(turn.prompt), _clean(turn.output)
            self.records.append((row, turn.turn, prompt, output, turn.provider, model, day, None,
                                 *kept))  # fmt: skip

    def add_pair(self, row: int, fields: dict[str, Any]) -> bool:
        """:meth:`add` for a well-formed ``pairs`` row, at a fraction of the cost; ``False``
        (nothing added) for any other row, which then takes the general path."""
        if "messages" in fields or "custom_id" in fields:
            return False
        output = fields.get("response", fields.get("output"))
        prompt = fields.get("prompt") or ""
        if type(output) is not str or type(prompt) is not str:
            return False
        model, day, kept = self._extras(fields)
        self.records.append((row, 0, _clean(prompt), _clean(output), None, model, day, None,
                             *kept))  # fmt: skip
        return True

    def _row_day(self, fields: Mapping[str, Any]) -> str | None:
        names = (self._spec.timestamp_field,) if self._spec.timestamp_field else TIMESTAMP_FIELDS
        for name in names:
            value = fields.get(name)
            if value is not None:
                return _day(value)
        return None

    def to_arrow(self) -> pa.Table:
        import pyarrow as pa

        rows, turns, prompts, outputs, providers, models, days, errors, *kept = (
            zip(*self.records, strict=True) if self.records else [()] * (8 + len(self._blank))
        )
        columns: dict[str, pa.Array] = {
            "source": pa.array([self._uri] * len(rows), pa.string()),
            "row": pa.array(rows, pa.int64()),
            "turn": pa.array(turns, pa.int32()),
            "prompt": pa.array(prompts, pa.large_string()),
            "output": pa.array(outputs, pa.large_string()),
            "provider": pa.array(providers, pa.string()),
            "model": pa.array(models, pa.string()),
        }
        if self._spec.day:
            columns["day"] = pa.array(days, pa.string())
        for name, values in zip(self._spec.keep, kept, strict=True):
            columns[name] = pa.array(values, pa.string())
        columns["error"] = pa.array(errors, pa.string())
        return pa.table(columns)


def _check_shape(row: Mapping[str, Any], spec: ReadSpec, source: Source, position: int) -> bool:
    """Whether ``row`` has the job's shape; ``False`` for a row of no shape at all."""
    try:
        found = shape_of(row)
    except ShapeError as exc:
        raise ShapeError(f"{_where(source, position)}: {exc}") from None
    if found is None:
        return False
    if found is not spec.shape:
        origin = f" (first seen at {spec.shape_origin})" if spec.shape_origin else ""
        raise ShapeError(
            f"{_where(source, position)}: a '{found.value}' row in an input of "
            f"'{spec.shape.value}' rows{origin}; "
            "every row of one audit must have the same shape: audit them separately."
        )
    return True


_NO_SHAPE = {
    Shape.PAIRS: "a row needs 'response' (and 'prompt')",
    Shape.MESSAGES: "a row needs 'messages'",
    Shape.BATCH: "a row needs 'custom_id', 'response' and 'error' (a Batch API output line)",
}


def _rows(source: Source, spec: ReadSpec) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """``(row number, row)`` or ``(row number, reason it cannot be read)``, through the file."""
    if source.format is FileFormat.PARQUET:
        for first, batch in iter_parquet(source, batch_rows=spec.batch_rows):
            yield from enumerate(batch.to_pylist(), start=first)
        return
    for number, line in iter_lines(source):
        if not line.strip():
            continue
        try:
            row = _DECODE(line.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError is one too
            yield number, f"invalid JSON ({exc})"
            continue
        yield number, row if isinstance(row, dict) else "a row must be a JSON object"


def read_source(
    source: Source, spec: ReadSpec, requests: RequestIndex | None = None
) -> Iterator[pa.Table]:
    """Tables of at most about ``spec.batch_rows`` outputs to score, through ``source``.

    Columns: ``source``, ``row`` (the line number in a JSON Lines file, the 1-based row number
    in a Parquet file), ``turn``, ``prompt``, ``output``, ``provider``, ``model``, ``day`` (when
    asked for), the kept columns, and ``error`` (why the row could not be read, else null).
    A file that stops being readable part way (a truncated archive) ends with one error row.

    Raises:
        ShapeError: a row has another shape than ``spec.shape``.
    """
    table = _Table(source, spec)
    rows = _rows(source, spec)
    position = 0
    pairs = spec.shape is Shape.PAIRS
    while True:
        try:
            position, row = next(rows)
        except StopIteration:
            break
        except (OSError, ValueError) as exc:
            # pyarrow raises OSError or ArrowInvalid (a ValueError) on corrupt or truncated data.
            table.add_error(position + 1, f"the rest of the file could not be read ({exc})")
            break
        if pairs and type(row) is dict and table.add_pair(position, row):
            pass
        elif isinstance(row, str):
            table.add_error(position, row)
        elif not _check_shape(row, spec, source, position):
            table.add_error(position, _NO_SHAPE[spec.shape])
        else:
            try:
                turns = turns_of(spec.shape, row, requests)
            except RowError as exc:
                table.add_error(position, str(exc))
            else:
                table.add(position, turns, fields_of(spec.shape, row, requests))
        if len(table) >= spec.batch_rows:
            yield table.to_arrow()
            table = _Table(source, spec)
    if len(table):
        yield table.to_arrow()


def detect_shape(sources: Sequence[Source], *, batch_rows: int = 1024) -> tuple[Shape, str] | None:
    """The shape of the first row that has one, and where it is; ``None`` if no row has one.

    Raises:
        ShapeError: the first row with a shape is a Batch API request line.
    """
    for source in sources:
        try:
            for position, row in _rows(source, ReadSpec(Shape.PAIRS, batch_rows=batch_rows)):
                if isinstance(row, dict):
                    try:
                        shape = shape_of(row)
                    except ShapeError as exc:
                        raise ShapeError(f"{_where(source, position)}: {exc}") from None
                    if shape is not None:
                        return shape, _where(source, position)
        except (OSError, ValueError) as exc:
            if isinstance(exc, ShapeError):
                raise
            continue  # unreadable: the job records it when it reads this file
    return None


def load_requests(sources: Sequence[Source]) -> RequestIndex:
    """Index the Batch API request files by ``custom_id``.

    Raises:
        ValueError: a line is not a request, is not JSON, or repeats a ``custom_id``.
    """
    index = RequestIndex()
    for source in sources:
        for position, row in _rows(source, ReadSpec(Shape.BATCH)):
            where = _where(source, position)
            if isinstance(row, str):
                raise ValueError(f"{where}: {row}.")
            index.add(row, where)
    return index
