"""``audit()``: score every output in a set of logs, write results, errors, summary and report.

The local engine is a loop over the same three steps a Ray job distributes (read a file into
tables, score a table, write it), so both engines give the same output row for row.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError, MissingDependencyError
from .._scanner import NoRefusalScanner
from ._read import OUTPUT_COLUMNS, ReadSpec, detect_shape, load_requests, read_source
from ._report import REPORT, write_report
from ._score import Scorer
from ._shapes import RequestIndex, Shape
from ._sink import ERRORS, RESULTS, Sink
from ._sources import Source, list_sources
from ._summary import Summary

__all__ = ["SUMMARY", "AuditResult", "audit"]

SUMMARY = "summary.json"
_BUILT_IN = ("model", "day")  # group-by columns that are not kept input columns


@dataclass(frozen=True)
class AuditResult:
    """What an audit wrote.

    Attributes:
        out: the output folder: ``results.parquet``, ``errors.jsonl``, ``summary.json``,
            ``report.md`` (and ``charts/`` when matplotlib is installed).
        summary: the contents of ``summary.json``.
        skipped: parts of the report left out, and why (charts without matplotlib).
    """

    out: Path
    summary: dict[str, Any]
    skipped: tuple[str, ...] = ()

    @property
    def results_path(self) -> Path:
        return self.out / RESULTS

    @property
    def errors_path(self) -> Path:
        return self.out / ERRORS

    @property
    def report_path(self) -> Path:
        return self.out / REPORT


def _need_pyarrow() -> None:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise MissingDependencyError("norefusal audit", "audit") from None


def _columns(keep: Sequence[str], group_by: Sequence[str]) -> tuple[tuple[str, ...], bool]:
    """The kept columns (group-by columns included) and whether ``day`` is wanted."""
    kept: list[str] = []
    day = False
    for name in [*keep, *group_by]:
        if not name or name != name.strip():
            raise ConfigurationError(f"Column names may not be empty or padded: {name!r}.")
        if name == "day":
            day = True
        elif name in OUTPUT_COLUMNS and name not in _BUILT_IN:
            raise ConfigurationError(
                f"A kept column may not be called {name!r}: the results already have one."
            )
        elif name not in _BUILT_IN and name not in kept:
            kept.append(name)
    return tuple(kept), day


def _spec(
    sources: list[Source],
    *,
    shape: Shape | str | None,
    keep: Sequence[str],
    group_by: Sequence[str],
    timestamp_field: str | None,
    batch_size: int,
) -> ReadSpec:
    kept, day = _columns(keep, group_by)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size must be a positive integer, got {batch_size!r}.")
    origin = ""
    if shape is None:
        found = detect_shape(sources, batch_rows=batch_size)
        # No row has a shape: every row will be an error; the job still reports them.
        shape, origin = found if found is not None else (Shape.PAIRS, "")
    else:
        try:
            shape = Shape(shape)
        except ValueError:
            raise ConfigurationError(
                f"shape must be one of {[s.value for s in Shape]}, got {shape!r}."
            ) from None
    return ReadSpec(
        shape=shape,
        keep=kept,
        day=day,
        timestamp_field=timestamp_field,
        batch_rows=batch_size,
        shape_origin=origin,
    )


def _requests(spec: ReadSpec, requests: Sequence[str]) -> RequestIndex | None:
    if spec.shape is not Shape.BATCH:
        if requests:
            raise ConfigurationError(
                f"Request files (--requests) go with Batch API output files; these inputs hold "
                f"'{spec.shape.value}' rows."
            )
        return None
    if not requests:
        raise ConfigurationError(
            "OpenAI Batch API output files need their request files to recover the prompts: "
            "pass them with --requests FILE (requests=[...])."
        )
    return load_requests(list_sources(requests))


def audit(
    inputs: Sequence[str | Path],
    *,
    out: str | Path,
    engine: str = "local",
    shape: Shape | str | None = None,
    keep: Sequence[str] = (),
    group_by: Sequence[str] = (),
    timestamp_field: str | None = None,
    requests: Sequence[str | Path] = (),
    scanner: Mapping[str, Any] | None = None,
    batch_size: int = 1024,
    ray: Any = None,
    progress: Callable[[int], object] | None = None,
) -> AuditResult:
    """Score every output in ``inputs`` and write the audit to ``out``.

    Args:
        inputs: JSON Lines or Parquet files, folders of them, or URLs pyarrow reads
            (``s3://``, ``gs://``, ``file://``).
        out: the output folder (created; earlier results in it are replaced).
        engine: ``"local"`` (this process, streaming, bounded memory) or ``"ray"``.
        shape: ``"pairs"``, ``"messages"`` or ``"batch"``; by default the first row's.
        keep: input columns passed through to the results (as text).
        group_by: columns to break the refusal rate down by: ``model``, ``day`` (from a
            timestamp), or any input column (kept automatically).
        timestamp_field: where ``day`` comes from; by default the first of ``timestamp``,
            ``created_at``, ``created``, ``time``, ``date`` that a row has.
        requests: the Batch API request files (for ``batch`` inputs).
        scanner: keyword arguments of :class:`~norefusal.NoRefusalScanner`.
        batch_size: rows per table: per ``scan_batch`` call, per Ray actor call.
        ray: :class:`~norefusal.audit.RayOptions` for the Ray engine.
        progress: called with the number of rows done after each table (a progress bar).

    Raises:
        ShapeError: rows of different shapes, or a request file given as input (the message
            names the file and line).
        MissingDependencyError: pyarrow (``norefusal[audit]``) or Ray (``norefusal[ray]``) is
            missing.
        ConfigurationError: a bad option.
        FileNotFoundError: an input does not exist.
    """
    _need_pyarrow()
    if engine not in ("local", "ray"):
        raise ConfigurationError(f"engine must be 'local' or 'ray', got {engine!r}.")
    scanner_options = dict(scanner or {})
    probe = NoRefusalScanner(**scanner_options)  # bad options fail here, before any work
    sources = list_sources([str(i) for i in inputs])
    spec = _spec(
        sources,
        shape=shape,
        keep=keep,
        group_by=group_by,
        timestamp_field=timestamp_field,
        batch_size=batch_size,
    )
    index = _requests(spec, [str(r) for r in requests])
    about = {
        "scanner": {"model": probe.model_name, "threshold": probe.threshold},
        "shape": spec.shape.value,
        "files": len(sources),
        "engine": engine,
    }
    out = Path(out)
    summary = Summary(list(dict.fromkeys(group_by)))
    sink = Sink(out, spec, summary, about)
    started = time.perf_counter()
    try:
        if engine == "ray":
            from ._ray import RayOptions, run_ray

            options = ray if ray is not None else RayOptions()
            run_ray(
                sources,
                spec,
                scanner_options,
                sink,
                requests=index,
                options=options,
                progress=progress,
            )
        else:
            scorer = Scorer(scanner_options)
            for source in sources:
                for table in read_source(source, spec, index):
                    sink.add(scorer(table))
                    if progress is not None:
                        progress(table.num_rows)
    except BaseException:
        sink.abort()
        raise
    sink.close()
    data = summary.to_dict()
    seconds = time.perf_counter() - started
    document = {**about, **data, "inputs": [s.uri for s in sources], "seconds": round(seconds, 3)}
    (out / SUMMARY).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    skipped = write_report(out, data, about)
    return AuditResult(out, document, tuple(skipped))
