"""``norefusal eval``: accuracy figures of a scanner on a labelled file (tooling, not runtime)."""

from __future__ import annotations

from ._eval import (
    MODES,
    EvalInputError,
    Example,
    Scorer,
    binary_metrics,
    evaluate,
    expected_calibration_error,
    main,
    read_labelled,
    write_report,
)

__all__ = [
    "MODES",
    "EvalInputError",
    "Example",
    "Scorer",
    "binary_metrics",
    "evaluate",
    "expected_calibration_error",
    "main",
    "read_labelled",
    "write_report",
]
