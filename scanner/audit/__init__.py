"""Audit logs of LLM conversations for refusals: ``norefusal audit``, locally or on Ray.

>>> from norefusal.audit import audit
>>> result = audit(["logs/"], out="audit-out", group_by=["model", "day"])
>>> result.summary["rate"], result.summary["ci95"]

The local engine needs pyarrow (``pip install "norefusal[audit]"``); the Ray engine needs Ray
Data (``pip install "norefusal[ray]"``), imported only when ``engine="ray"``.
"""

from __future__ import annotations

from ._audit import SUMMARY, AuditResult, audit
from ._ray import RayOptions
from ._read import TIMESTAMP_FIELDS
from ._shapes import Shape, ShapeError
from ._summary import wilson

__all__ = [
    "SUMMARY",
    "TIMESTAMP_FIELDS",
    "AuditResult",
    "RayOptions",
    "Shape",
    "ShapeError",
    "audit",
    "main",
    "wilson",
]


def main(argv: list[str]) -> int:
    """``norefusal audit ARGS``: see ``norefusal audit --help``."""
    from ._cli import main as cli_main

    return cli_main(argv)
