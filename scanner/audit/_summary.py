"""Refusal rates with Wilson 95% intervals, overall and by group, accumulated table by table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Z95", "Summary", "rate_entry", "wilson"]

#: The standard normal quantile of 0.975: a two-sided 95% interval.
Z95 = 1.959963984540054


def wilson(refusals: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion ``refusals / n``; ``None`` when ``n`` is 0.

    Unlike the normal approximation it stays inside [0, 1] and behaves at rates near 0 or 1
    and on small groups, which is where audits look hardest.
    """
    if n <= 0:
        return None
    if not 0 <= refusals <= n:
        raise ValueError(f"refusals must be in [0, {n}], got {refusals}.")
    p = refusals / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_entry(refusals: int, n: int) -> dict[str, Any]:
    """``{"outputs", "refusals", "rate", "ci95"}`` of one group; rate and interval null if empty."""
    interval = wilson(refusals, n)
    return {
        "outputs": n,
        "refusals": refusals,
        "rate": refusals / n if n else None,
        "ci95": list(interval) if interval else None,
    }


class Summary:
    """Counts scored outputs and refusals, overall, by signal and by each group-by column.

    Args:
        group_by: the columns to break the rate down by, each on its own.
    """

    def __init__(self, group_by: Sequence[str] = ()) -> None:
        self.group_by = tuple(group_by)
        self.outputs = 0
        self.refusals = 0
        self.errors = 0
        self.signals: dict[str, int] = {}
        self._groups: dict[str, dict[str | None, list[int]]] = {c: {} for c in self.group_by}

    def add(self, results: pa.Table) -> None:
        """Count a table of scored rows (no error rows) with ``is_refusal`` and ``signal``."""
        import pyarrow.compute as pc

        n = results.num_rows
        if not n:
            return
        self.outputs += n
        self.refusals += int(pc.sum(results.column("is_refusal")).as_py() or 0)
        for item in pc.value_counts(results.column("signal")).to_pylist():
            self.signals[item["values"]] = self.signals.get(item["values"], 0) + item["counts"]
        for column in self.group_by:
            counts = results.group_by(column).aggregate(
                [("is_refusal", "sum"), ("is_refusal", "count")]
            )
            groups = self._groups[column]
            for value, refused, total in zip(
                counts.column(column).to_pylist(),
                counts.column("is_refusal_sum").to_pylist(),
                counts.column("is_refusal_count").to_pylist(),
                strict=True,
            ):
                entry = groups.setdefault(value, [0, 0])
                entry[0] += refused or 0
                entry[1] += total

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the overall rate, signals, errors, and groups by value (null last)."""
        by: dict[str, list[dict[str, Any]]] = {}
        for column, groups in self._groups.items():
            ordered = sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
            by[column] = [{"value": v, **rate_entry(k, n)} for v, (k, n) in ordered]
        return {
            **rate_entry(self.refusals, self.outputs),
            "errors": self.errors,
            "signals": dict(sorted(self.signals.items())),
            "by": by,
        }
