"""The output folder: results as Parquet, unreadable rows as JSON Lines, counted as they pass.

Files are written under temporary names and renamed when the job ends, so a folder never
holds the results of half a job next to the summary of a whole one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._read import ReadSpec
from ._summary import Summary

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = ["ERRORS", "RESULTS", "Sink", "result_schema"]

RESULTS = "results.parquet"
ERRORS = "errors.jsonl"
_ROW_GROUP = 65536  # rows per Parquet row group: big enough to scan fast, small to buffer


def result_schema(spec: ReadSpec) -> pa.Schema:
    """The columns of ``results.parquet`` for a job read with ``spec``."""
    import pyarrow as pa

    fields = [
        pa.field("source", pa.string()),
        pa.field("row", pa.int64()),
        pa.field("turn", pa.int32()),
        pa.field("model", pa.string()),
    ]
    if spec.day:
        fields.append(pa.field("day", pa.string()))
    fields += [pa.field(name, pa.string()) for name in spec.keep]
    fields += [
        pa.field("score", pa.float64()),
        pa.field("is_refusal", pa.bool_()),
        pa.field("signal", pa.string()),
        pa.field("detail", pa.string()),
    ]
    return pa.schema(fields)


class Sink:
    """Takes scored tables in input order; writes results, errors, and counts the summary.

    Args:
        out: the output folder (created if missing).
        spec: how the rows were read (for the results' columns).
        summary: where counts go.
        metadata: stored in the Parquet file's metadata under ``norefusal``.
    """

    def __init__(
        self, out: Path, spec: ReadSpec, summary: Summary, metadata: dict[str, Any]
    ) -> None:
        import pyarrow.parquet as pq

        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.summary = summary
        schema = result_schema(spec).with_metadata({"norefusal": json.dumps(metadata)})
        self._schema = schema
        self._results_tmp = out / f".{RESULTS}.part"
        self._errors_tmp = out / f".{ERRORS}.part"
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(self._results_tmp, schema)
        self._errors = self._errors_tmp.open("w", encoding="utf-8")
        self._buffer: list[pa.Table] = []
        self._buffered = 0

    def add(self, table: pa.Table) -> None:
        """Write one scored table: error rows to the errors file, the rest to the results."""
        import pyarrow.compute as pc

        failed = pc.is_valid(table.column("error"))
        if pc.any(failed).as_py():
            bad = table.filter(failed)
            for source, row, reason in zip(
                bad.column("source").to_pylist(),
                bad.column("row").to_pylist(),
                bad.column("error").to_pylist(),
                strict=True,
            ):
                self._errors.write(json.dumps({"source": source, "row": row, "reason": reason}))
                self._errors.write("\n")
            self.summary.errors += bad.num_rows
            table = table.filter(pc.invert(failed))
        results = table.select(self._schema.names).cast(self._schema)
        self.summary.add(results)
        self._buffer.append(results)
        self._buffered += results.num_rows
        if self._buffered >= _ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._buffer and self._writer is not None:
            self._writer.write_table(pa.concat_tables(self._buffer), row_group_size=_ROW_GROUP)
        self._buffer, self._buffered = [], 0

    def close(self) -> None:
        """Finish both files and put them in place."""
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._errors.close()
        os.replace(self._results_tmp, self.out / RESULTS)
        os.replace(self._errors_tmp, self.out / ERRORS)

    def abort(self) -> None:
        """Drop what was written: the job failed."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._errors.close()
        for path in (self._results_tmp, self._errors_tmp):
            path.unlink(missing_ok=True)
