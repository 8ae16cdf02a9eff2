"""The public surface of norefusal.policies is exactly its ``__all__``."""

from __future__ import annotations

import types

import norefusal.policies as policies


def test_all_is_the_public_surface() -> None:
    public = {
        name
        for name, value in vars(policies).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public == set(policies.__all__)
    assert sorted(policies.__all__) == sorted(set(policies.__all__))


def test_the_names_integrations_build_on() -> None:
    for name in (
        "Policy", "Guard", "Candidate", "Outcome", "RetryRequest", "FallbackRequest",
        "StreamAction", "DecisionEvent", "Action", "OnError",
    ):  # fmt: skip
        assert name in policies.__all__
