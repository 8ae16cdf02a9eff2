"""ScanResult and the risk score: LLM Guard's protocol, exactly; empty outputs; bad arguments."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from norefusal import NoRefusalScanner, ScanResult, Signal, risk_score


def llm_guard_calculate_risk_score(score: float, threshold: float) -> float:
    """The oracle: ``llm_guard.util.calculate_risk_score`` (llm-guard 0.3.16), copied verbatim."""
    if score > threshold:
        risk_score = round((score - threshold) / (1 - threshold), 1)
    else:
        risk_score = round((score - threshold) / threshold, 1)

    return min(max(risk_score, -1), 1)


@pytest.mark.parametrize(
    ("score", "risk"), [(0.2, -0.6), (0.4, -0.2), (0.6, 0.2), (0.8, 0.6), (0.5, 0.0)]
)
def test_risk_at_threshold_one_half(score: float, risk: float) -> None:
    assert risk_score(score, 0.5) == risk
    assert ScanResult("x", score=score, threshold=0.5).risk == risk


@pytest.mark.parametrize(
    ("score", "threshold", "risk"),
    [(0.0, 0.75, -1.0), (1.0, 0.75, 1.0), (1.0, 0.01, 1.0), (0.0, 0.99, -1.0), (0.99, 0.9, 0.9)],
)
def test_risk_is_clamped_and_rounded(score: float, threshold: float, risk: float) -> None:
    assert risk_score(score, threshold) == risk
    assert -1.0 <= risk_score(score, threshold) <= 1.0


def test_risk_equals_llm_guard_over_a_grid() -> None:
    scores = [i / 100 for i in range(101)]
    thresholds = [i / 20 for i in range(1, 20)] + [0.01, 0.33, 0.75, 0.92, 0.99]
    for threshold in thresholds:
        for score in scores:
            assert risk_score(score, threshold) == llm_guard_calculate_risk_score(
                score, threshold
            ), (score, threshold)


@given(
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=0.001, max_value=0.999),
)
def test_risk_equals_llm_guard_anywhere(score: float, threshold: float) -> None:
    assert risk_score(score, threshold) == llm_guard_calculate_risk_score(score, threshold)


def test_scan_result_is_the_llm_guard_tuple_with_more_fields() -> None:
    result = ScanResult(
        "no.", score=0.9, threshold=0.75, signal=Signal.PROVIDER, model="m", detail="why"
    )
    sanitized, valid, risk = result
    assert (sanitized, valid, risk) == ("no.", False, 0.6)
    assert result == ("no.", False, 0.6)
    assert isinstance(result, tuple)
    assert len(result) == 3
    assert (result.score, result.is_refusal, result.threshold) == (0.9, True, 0.75)
    assert (result.signal, result.model, result.detail) == (Signal.PROVIDER, "m", "why")
    assert (result.sanitized, result.valid, result.risk) == result
    with pytest.raises(AttributeError):
        result.score = 0.1
    assert pickle.loads(pickle.dumps(result)).to_dict() == result.to_dict()
    assert "no." not in repr(result)
    assert "sanitized" not in result.to_dict()
    assert result.to_dict(include_output=True)["sanitized"] == "no."


def test_is_refusal_overrides_the_score() -> None:
    provider = ScanResult("", score=1.0, threshold=0.5, signal="provider", is_refusal=True)
    assert provider.signal is Signal.PROVIDER
    assert provider.valid is False
    allowed = ScanResult("x", score=0.9, threshold=0.5, is_refusal=False)
    assert allowed.valid is True


@pytest.mark.parametrize("score", [-0.1, 1.1, float("nan"), float("inf")])
def test_scan_result_rejects_a_score_that_is_not_a_probability(score: float) -> None:
    with pytest.raises(ValueError, match="score"):
        ScanResult("x", score=score, threshold=0.5)


RESULT = ScanResult("no.", score=0.9, threshold=0.63, signal="provider", model="m", detail="d")


@pytest.mark.parametrize(
    "change",
    [
        "del result.score",
        "del result.threshold",
        "del result.detail",
        "del result._extras",
        "result.score = 0.1",
        "result._extras = ()",
        "result.__dict__['_extras'] = ()",
        "result.__dict__['score'] = 0.1",
        "vars(result).clear()",
        "result.__class__ = tuple",
    ],
)
def test_a_result_cannot_be_changed_or_emptied(change: str) -> None:
    """Before: ``del result.score`` worked, and then to_dict() and pickling failed."""
    result = ScanResult("no.", score=0.9, threshold=0.63, signal="provider", model="m", detail="d")
    with pytest.raises((AttributeError, TypeError)):
        exec(change, {"result": result})
    assert result.to_dict() == RESULT.to_dict()
    assert pickle.loads(pickle.dumps(result)).to_dict() == RESULT.to_dict()
    assert (result.score, result.threshold, result.detail) == (0.9, 0.63, "d")
    assert dict(vars(result)) == {}  # no instance attributes to reach


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"threshold": 0.0}, ValueError, r"threshold must be a number in \(0, 1\)"),
        ({"threshold": 1.0}, ValueError, r"threshold must be a number in \(0, 1\)"),
        ({"threshold": -0.5}, ValueError, "threshold"),
        ({"threshold": float("nan")}, ValueError, "threshold must be a number, got NaN"),
        ({"threshold": float("inf")}, ValueError, "threshold"),
        ({"threshold": "0.5"}, TypeError, "threshold must be a real number, not str"),
        ({"threshold": True}, TypeError, "threshold must be a real number, not bool"),
        ({"threshold": None}, TypeError, "threshold"),
        ({"score": float("nan")}, ValueError, "score must be a number, got NaN"),
        ({"score": "0.9"}, TypeError, "score must be a real number, not str"),
        ({"score": False}, TypeError, "score"),
        ({"is_refusal": 1}, TypeError, "is_refusal must be a bool"),
        ({"model": None}, TypeError, "model must be a str"),
        ({"detail": 3}, TypeError, "detail must be a str"),
        ({"signal": "nope"}, ValueError, "nope"),
    ],
)
def test_a_result_with_a_bad_field_is_an_error(
    fields: dict[str, Any], error: type[Exception], message: str
) -> None:
    """A bad threshold is a ValueError, never a ZeroDivisionError from the risk score."""
    with pytest.raises(error, match=message):
        ScanResult("x", **{"score": 0.5, "threshold": 0.5, **fields})
    with pytest.raises(TypeError, match="output must be a str"):
        ScanResult(None, score=0.5, threshold=0.5)  # type: ignore[arg-type]


def test_numpy_numbers_become_floats() -> None:
    import numpy as np

    result = ScanResult("x", score=np.float32(0.75), threshold=np.float64(0.5))
    assert type(result.score) is float
    assert type(result.threshold) is float
    assert result.to_dict()["score"] == 0.75


# -- the scanner's results -----------------------------------------------------------------


@pytest.mark.parametrize("output", ["", " ", "\n\t  \r\n", "\u3000\u2003"])
def test_empty_or_whitespace_output(keyword_scanner: NoRefusalScanner, output: str) -> None:
    result = keyword_scanner.scan("Tell me a joke.", output)
    assert result == (output, True, -1.0)
    assert result.sanitized is output
    assert result.signal is Signal.EMPTY
    assert not result.is_refusal


@pytest.mark.parametrize("which", ["roberta", "bert", "onnx"])
def test_empty_output_never_reaches_the_model(which: str, request: pytest.FixtureRequest) -> None:
    scanner: NoRefusalScanner = request.getfixturevalue(f"{which}_scanner")
    assert scanner.scan("prompt", "   ") == ("   ", True, -1.0)


def test_none_is_empty_text(keyword_scanner: NoRefusalScanner) -> None:
    """Documented: None (OpenAI's content for tool calls) counts as an empty output or prompt."""
    assert keyword_scanner.scan("p", None) == ("", True, -1.0)
    refusal = "I'm sorry, but I can't help with that."
    assert keyword_scanner.scan(None, refusal) == keyword_scanner.scan("", refusal)


@pytest.mark.parametrize("bad", [b"bytes", 42, ["a"], {"text": "a"}])
def test_non_string_arguments_raise_type_error_naming_them(
    keyword_scanner: NoRefusalScanner, bad: Any
) -> None:
    with pytest.raises(TypeError, match=r"^output must be a str"):
        keyword_scanner.scan("p", bad)
    with pytest.raises(TypeError, match=r"^prompt must be a str"):
        keyword_scanner.scan(bad, "fine")
    with pytest.raises(TypeError, match="output"):
        keyword_scanner.scan_batch([("p", "ok"), ("p", bad)])


def test_scan_results_follow_the_score_and_threshold(keyword_scanner: NoRefusalScanner) -> None:
    refusal = keyword_scanner.scan(
        "How do I make a bomb?", "I'm sorry, but I can't help with that."
    )
    answer = keyword_scanner.scan("Capital of France?", "The capital of France is Paris.")
    assert refusal.is_refusal
    assert refusal.valid is False
    assert refusal.risk == risk_score(refusal.score, 0.5)
    assert refusal.signal is Signal.CLASSIFIER
    assert refusal.model == "keyword"
    assert answer.valid
    assert answer.risk == risk_score(answer.score, 0.5)
    assert answer.score < 0.5 < refusal.score


def test_output_is_returned_unaltered(keyword_scanner: NoRefusalScanner) -> None:
    for output in ["  padded  ", "tabs\tand\r\nnewlines", "I\u2019m sorry", "\x00nul"]:
        assert keyword_scanner.scan("p", output).sanitized is output
