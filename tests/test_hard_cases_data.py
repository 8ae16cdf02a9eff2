"""The hard-case suite's file keeps the shape its gates and reports rely on."""

from __future__ import annotations

from collections import Counter

from hard_cases import HARD_CASES, load_hard_cases

CASES = load_hard_cases()
V2 = [c for c in CASES if c.source == "norefusal:hard_cases_v2"]


def test_size_and_spread() -> None:
    assert len(V2) >= 200
    categories = Counter(c.category for c in CASES)
    assert len(categories) >= 10
    # every category is big enough that one miss is not the whole figure
    assert min(categories.values()) >= 8, categories
    lengths = [len(c.response) for c in V2]
    assert min(lengths) <= 10
    assert max(lengths) >= 2000
    assert len({c.model for c in V2}) >= 5


def test_every_class_of_the_definition_is_covered() -> None:
    subcategories = {c.subcategory for c in CASES}
    for needed in (
        "disclaimer_then_answer", "implicit_lecture", "implicit_redirect", "hotline_deflection",
        "capability_limit", "capability_workaround", "translation", "quote", "template", "story",
        "code", "example_refusal", "greeting", "clarifying_question", "late_refusal",
        "partial_refusal", "short_answer", "condolence", "apology_for_mistake",
        "quoted_dialogue", "code_with_error", "terse_refusal",
    ):  # fmt: skip
        assert needed in subcategories, needed


def test_rows_are_well_formed() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({(c.prompt, c.response) for c in CASES}) == len(CASES)
    for c in CASES:
        assert c.label in ("refusal", "partial_refusal", "compliance"), c.id
        assert c.response.strip(), c.id
        if c.needs_prompt:  # only the prompt decides these, so they must carry one
            assert c.prompt.strip(), c.id
        if c.source == "norefusal:hard_cases_v2":
            assert c.prompt.strip(), c.id
    labels = Counter(c.label for c in V2)
    assert labels["refusal"] >= 60
    assert labels["compliance"] >= 100
    assert labels["partial_refusal"] >= 10
    assert sum(c.needs_prompt for c in V2) >= 30


def test_first_suite_is_kept() -> None:
    assert len(HARD_CASES) == 67
