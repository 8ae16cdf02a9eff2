"""norefusal.policies: what happens when an LLM refused, and when the scanner fails.

    >>> from norefusal.policies import Guard, Candidate
    >>> guard = Guard("retry-then-raise")
    >>> outcome = guard.run(prompt, response, candidates=..., call_again=...)

A :class:`Policy` (strict pydantic, loadable from YAML) says what to do on a refusal: ``flag``,
``raise``, ``replace``, ``retry`` or ``fallback``, and what a scanner failure means
(``on_error``). A :class:`Guard` applies it: one pure decision engine, driven by a sync and an
async driver that only do I/O. Integrations call the Guard; they never re-implement retries.
"""

from __future__ import annotations

from ._engine import DEFAULT_BLOCK_MESSAGE
from ._events import DecisionEvent, Metrics
from ._guard import Guard
from ._loading import BUILTIN_POLICIES, PolicyError, Problem
from ._model import Action, AllowPattern, OnError, Policy, ScannerSettings
from ._monitor import GuardMonitor
from ._types import (
    Candidate,
    FallbackRequest,
    Outcome,
    RetryRequest,
    ScannerLike,
    StreamAction,
)

__all__ = [
    "BUILTIN_POLICIES",
    "DEFAULT_BLOCK_MESSAGE",
    "Action",
    "AllowPattern",
    "Candidate",
    "DecisionEvent",
    "FallbackRequest",
    "Guard",
    "GuardMonitor",
    "Metrics",
    "OnError",
    "Outcome",
    "Policy",
    "PolicyError",
    "Problem",
    "RetryRequest",
    "ScannerLike",
    "ScannerSettings",
    "StreamAction",
]
