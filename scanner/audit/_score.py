"""Scoring one table of read rows: the step both engines share (a Ray Data actor runs it too)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._result import Signal
from .._scanner import NoRefusalScanner

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Scorer"]


class Scorer:
    """Adds ``score``, ``is_refusal``, ``signal`` and ``detail`` to a table from ``read_source``.

    The scanner loads once, in ``__init__``: as a Ray Data callable class this runs once per
    actor. Rows marked with an ``error`` pass through unscored; ``prompt``, ``output`` and
    ``provider`` are dropped, so no text leaves this step. A row with a provider refusal
    signal is a refusal with score 1.0, as in the OpenAI integration; every other row gets
    exactly :meth:`NoRefusalScanner.scan_batch`'s result.

    Args:
        scanner_options: keyword arguments of :class:`~norefusal.NoRefusalScanner`.
    """

    def __init__(self, scanner_options: Mapping[str, Any]) -> None:
        self.scanner = NoRefusalScanner(**scanner_options)
        self.scanner.load()

    def __call__(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa
        import pyarrow.compute as pc

        n = table.num_rows
        errors = table.column("error")
        providers = table.column("provider")
        prompts = table.column("prompt").to_pylist()
        outputs = table.column("output").to_pylist()
        if errors.null_count == n and providers.null_count == n:  # the usual table: score all
            results = self.scanner.scan_batch(zip(prompts, outputs, strict=True))
            scores: list[float | None] = [r.score for r in results]
            refusals: list[bool | None] = [r.is_refusal for r in results]
            signals: list[str | None] = [r.signal.value for r in results]
            details: list[str | None] = [r.detail for r in results]
        else:
            scores, refusals, signals, details = [None] * n, [None] * n, [None] * n, [None] * n
            mask = pc.and_(pc.is_null(errors), pc.is_null(providers)).to_pylist()
            todo = [i for i, scored in enumerate(mask) if scored]
            results = self.scanner.scan_batch([(prompts[i], outputs[i]) for i in todo])
            for i, result in zip(todo, results, strict=True):
                scores[i], refusals[i] = result.score, result.is_refusal
                signals[i], details[i] = result.signal.value, result.detail
            for i, (error, provider) in enumerate(
                zip(errors.to_pylist(), providers.to_pylist(), strict=True)
            ):
                if provider is not None and error is None:
                    scores[i], refusals[i] = 1.0, True
                    signals[i], details[i] = Signal.PROVIDER.value, provider
        kept = table.drop_columns(["prompt", "output", "provider", "error"])
        return (
            kept.append_column("score", pa.array(scores, pa.float64()))
            .append_column("is_refusal", pa.array(refusals, pa.bool_()))
            .append_column("signal", pa.array(signals, pa.string()))
            .append_column("detail", pa.array(details, pa.string()))
            .append_column("error", errors)
        )
