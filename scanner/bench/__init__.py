"""``norefusal bench``: norefusal's speed next to LLM Guard's NoRefusal (tooling, not runtime).

:mod:`._inputs` draws the inputs, :mod:`._measure` times the scanners (LLM Guard in its own
virtualenv), :mod:`._report` turns timings into figures, ratios and targets, and :mod:`._run` is
the command.
"""

from __future__ import annotations

from ._run import main

__all__ = ["main"]
