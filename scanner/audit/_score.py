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

        errors = table.column("error").to_pylist()
        providers = table.column("provider").to_pylist()
        todo = [
            i
            for i, (e, p) in enumerate(zip(errors, providers, strict=True))
            if e is None and p is None
        ]
        prompts = table.column("prompt").to_pylist()
        outputs = table.column("output").to_pylist()
        pairs = [(prompts[i], outputs[i]) for i in todo]
        results = self.scanner.scan_batch(pairs)
        n = table.num_rows
        scores: list[float | None] = [None] * n
        refusals: list[bool | None] = [None] * n
        signals: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        for i, result in zip(todo, results, strict=True):
            scores[i] = result.score
            refusals[i] = result.is_refusal
            signals[i] = result.signal.value
            details[i] = result.detail
        for i, provider in enumerate(providers):
            if provider is not None and errors[i] is None:
                scores[i], refusals[i] = 1.0, True
                signals[i], details[i] = Signal.PROVIDER.value, provider
        kept = table.drop_columns(["prompt", "output", "provider", "error"])
        return (
            kept.append_column("score", pa.array(scores, pa.float64()))
            .append_column("is_refusal", pa.array(refusals, pa.bool_()))
            .append_column("signal", pa.array(signals, pa.string()))
            .append_column("detail", pa.array(details, pa.string()))
            .append_column("error", table.column("error"))
        )
