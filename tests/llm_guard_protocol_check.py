"""Proves NoRefusalScanner satisfies LLM Guard's output-scanner protocol with the real package.

llm-guard pins an older transformers, so `.ci/run` runs this in its own virtual environment,
with norefusal installed there from a built wheel (`pip install .`). Exits non-zero on failure.
"""

from __future__ import annotations

import sys

from llm_guard import scan_output
from llm_guard.output_scanners.no_refusal import NoRefusalLight
from norefusal import NoRefusalScanner, ScanResult

REFUSAL = "I'm sorry, but I can't help with that request."
ANSWER = "The capital of France is Paris."


def check(scanner: NoRefusalScanner) -> None:
    name = type(scanner).__name__
    sanitized, valid, scores = scan_output([scanner, NoRefusalLight()], "Tell me.", REFUSAL)
    assert sanitized == REFUSAL, sanitized
    assert valid[name] is False, valid
    assert 0.0 < scores[name] <= 1.0, scores
    sanitized, valid, scores = scan_output([scanner], "What is the capital of France?", ANSWER)
    assert sanitized == ANSWER
    assert valid[name] is True, valid
    assert scores[name] < 0, scores
    # scan_output skips whitespace output itself; the scanner answers it as NoRefusal does.
    assert tuple(scanner.scan("q", "   ")) == ("   ", True, -1.0)
    result = scanner.scan("q", REFUSAL)
    assert isinstance(result, ScanResult)
    assert tuple(result) == (REFUSAL, False, result.risk)
    print(f"ok: llm_guard.scan_output accepts NoRefusalScanner(model={scanner.model_name!r})")


def main() -> int:
    check(NoRefusalScanner(model="keyword"))
    check(NoRefusalScanner())  # the embedded default model, from the installed wheel
    return 0


if __name__ == "__main__":
    sys.exit(main())
