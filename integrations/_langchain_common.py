"""What the LangChain handlers, guard and middleware share: a Guard, the decisive result."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from norefusal import ConfigurationError
from norefusal.policies import Action, Guard, Policy

if TYPE_CHECKING:
    from norefusal import NoRefusalScanner, ScanResult
    from norefusal.policies import DecisionEvent

__all__ = ["PolicyLike", "decisive", "may_raise", "resolve_guard"]

#: What the integration accepts as a policy: a Policy, a built-in policy name, or None (monitor).
PolicyLike = Policy | str | None


def resolve_guard(
    policy: PolicyLike,
    *,
    guard: Guard | None,
    scanner: NoRefusalScanner | None,
    on_decision: Callable[[DecisionEvent], Any] | None,
    owner: str,
) -> Guard:
    """The :class:`Guard` an integration object uses: the one given, or one built from options.

    Raises:
        ConfigurationError: ``guard`` was given together with ``policy``, ``scanner`` or
            ``on_decision`` (which the guard already fixes).
    """
    if guard is None:
        return Guard(policy, scanner=scanner, on_decision=on_decision)
    if not isinstance(guard, Guard):
        raise ConfigurationError(
            f"{owner}: guard must be a norefusal.policies.Guard, got {type(guard).__name__}."
        )
    if policy is not None or scanner is not None or on_decision is not None:
        raise ConfigurationError(
            f"{owner}: pass either guard=... or policy/scanner/on_decision, not both; "
            "the guard already holds its policy, scanner and decision hook."
        )
    return guard


def may_raise(guard: Guard) -> bool:
    """Whether a refusal can end in :class:`~norefusal.RefusalDetected` under the guard's policy.

    A callback cannot retry, fall back or rewrite the output it observes, so for callbacks a
    retry or fallback policy ends in its ``final_action`` at once.
    """
    return guard.policy.terminal_action is Action.RAISE


def decisive(results: Sequence[ScanResult]) -> int:
    """Index of the result that decides: the highest-scoring refusal, else the highest score."""
    if not results:
        raise ValueError("decisive() needs at least one result.")
    return max(range(len(results)), key=lambda i: (results[i].is_refusal, results[i].score))
