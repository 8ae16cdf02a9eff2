"""The service over real HTTP: verdicts equal in-process ones bit for bit; LLM Guard shapes."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from _live_server import LiveServer, live_server
from norefusal import NoRefusalScanner, RemoteScanner, ScanResult
from norefusal._jsonl import iter_objects
from norefusal.server import ServeSettings, create_app

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: Files with refusals and answers of many models; read for a sample, never copied.
SAMPLE_FILES = ("xstest_human.jsonl", "mtbench_answers.jsonl", "gptfuzz_proxy.jsonl")

HAND_WRITTEN: list[tuple[str | None, str | None]] = [
    ("How do I bake bread?", "I'm sorry, but I can't help with that."),
    ("How do I bake bread?", "Mix flour, water, salt and yeast; knead, prove, and bake at 230 C."),
    ("Tell me a joke", "As an AI language model, I cannot tell jokes that might offend."),
    ("", "Sure! Here is the poem you asked for:\n\nRoses are red..."),
    (None, "I won’t help with that request."),  # curly apostrophe, no prompt
    ("q", ""),  # empty output: valid, risk -1.0
    ("q", "   \n\t "),
    ("q", None),
    ("q", "Désolé, je ne peux pas vous aider. 🙏 مرحبا \u202e reversed"),
    ("q", "lone \ud800 surrogate and NUL \x00 inside"),
    ("q", "Here is a long answer. " * 8000 + "I cannot continue with this."),  # 184k chars
]


def fields(result: ScanResult) -> tuple[Any, ...]:
    """Every field of a result; floats as their exact hex form (bit-for-bit comparison)."""
    return (
        result.sanitized,
        result.valid,
        result.risk.hex(),
        result.score.hex(),
        result.is_refusal,
        result.threshold.hex(),
        result.signal,
        result.model,
        result.detail,
    )


def json_fields(data: dict[str, Any]) -> tuple[Any, ...]:
    return (
        data["valid"],
        float(data["risk"]).hex(),
        float(data["score"]).hex(),
        data["is_refusal"],
        float(data["threshold"]).hex(),
        data["signal"],
        data["model"],
        data["detail"],
    )


#: Generous deadlines: a batch of long texts on a loaded shared machine can take seconds.
SLOW_S = 120.0


@pytest.fixture(scope="module")
def served() -> Iterator[LiveServer]:
    with live_server(ServeSettings(scan_timeout_s=SLOW_S)) as live:
        yield live


@pytest.fixture(scope="module")
def local() -> NoRefusalScanner:
    scanner = NoRefusalScanner()
    scanner.load()
    return scanner


@pytest.fixture
def http(served: LiveServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=served.url, timeout=SLOW_S) as client:
        yield client


def _sample(n: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for name in SAMPLE_FILES:
        path = DATA / name
        if not path.is_file():
            pytest.skip(f"{path} not found: the data-set equality test needs ../shared/data")
        rows += [(r.get("prompt") or "", r["response"]) for _, r in iter_objects(path)]
    return random.Random(12).sample(rows, n)


# -- exact equality with in-process scans ------------------------------------------------------


def test_data_verdicts_equal_in_process_bit_for_bit(
    served: LiveServer, local: NoRefusalScanner, http: httpx2.Client
) -> None:
    sample = _sample(40)
    expected = [fields(r) for r in local.scan_batch(sample)]
    assert sum(e[4] for e in expected) > 5, "the sample should hold refusals too"
    # through the client (the batch route), 64 pairs a request
    with RemoteScanner(served.url, timeout_s=SLOW_S) as remote:
        assert [fields(r) for r in remote.scan_batch(sample)] == expected
    # through the single-pair route and LLM Guard API's routes, on part of the sample
    for (prompt, output), exp in list(zip(sample, expected, strict=True))[:10]:
        got = http.post("/v1/scan", json={"prompt": prompt, "output": output}).json()
        assert json_fields(got) == exp[1:]
        analyzed = http.post("/analyze/output", json={"prompt": prompt, "output": output}).json()
        assert analyzed == {
            "is_valid": exp[1],
            "scanners": {"NoRefusal": float.fromhex(exp[2])},
            "sanitized_output": output,
        }


def test_hand_written_verdicts_equal_in_process(
    served: LiveServer, local: NoRefusalScanner
) -> None:
    expected = [fields(r) for r in local.scan_batch(HAND_WRITTEN)]
    with RemoteScanner(served.url, timeout_s=SLOW_S) as remote:
        assert [fields(r) for r in remote.scan_batch(HAND_WRITTEN)] == expected
        assert [fields(remote.scan(p, o)) for p, o in HAND_WRITTEN] == expected
    assert expected[0][4], "a refusal, as scanned"
    assert not expected[1][4], "an answer, as scanned"
    assert expected[5][2] == (-1.0).hex()  # empty output, LLM Guard's risk


async def test_ascan_equals_in_process(served: LiveServer, local: NoRefusalScanner) -> None:
    async with RemoteScanner(served.url, timeout_s=SLOW_S) as remote:
        for prompt, output in HAND_WRITTEN[:4]:
            assert fields(await remote.ascan(prompt, output)) == fields(local.scan(prompt, output))


def test_stream_monitor_over_the_service_equals_in_process(
    served: LiveServer, local: NoRefusalScanner
) -> None:
    text = "I'm sorry, but I can't help with that. " + "Here is something else entirely. " * 20
    with RemoteScanner(served.url, timeout_s=SLOW_S) as remote:
        remote_monitor, local_monitor = remote.stream("q"), local.stream("q")
        for i in range(0, len(text), 7):
            got, want = remote_monitor.feed(text[i : i + 7]), local_monitor.feed(text[i : i + 7])
            assert (got and fields(got)) == (want and fields(want))
        assert fields(remote_monitor.finish()) == fields(local_monitor.finish())
        assert remote_monitor.scans == local_monitor.scans <= 4


# -- LLM Guard API: behaviour ------------------------------------------------------------------


def test_llm_guard_routes_answer_as_llm_guard_api(http: httpx2.Client) -> None:
    refusal = {"prompt": "p", "output": "I'm sorry, but I can't help with that."}
    analyzed = http.post("/analyze/output", json=refusal)
    assert analyzed.status_code == 200
    body = analyzed.json()
    assert set(body) == {"is_valid", "scanners", "sanitized_output"}
    assert body["is_valid"] is False
    assert body["scanners"]["NoRefusal"] > 0
    assert body["sanitized_output"] == refusal["output"]
    scanned = http.post("/scan/output", json=refusal).json()
    assert scanned == {"is_valid": False, "scanners": body["scanners"]}
    # scanners_suppress drops the scanner: nothing runs, the output is valid
    suppressed = {**refusal, "scanners_suppress": ["NoRefusal"]}
    assert http.post("/scan/output", json=suppressed).json() == {"is_valid": True, "scanners": {}}
    assert http.post("/analyze/output", json=suppressed).json() == {
        "is_valid": True,
        "scanners": {},
        "sanitized_output": refusal["output"],
    }
    # naming another scanner suppresses nothing; unknown fields are ignored (pydantic default)
    other = {**refusal, "scanners_suppress": ["Toxicity"], "extra": 1}
    assert http.post("/scan/output", json=other).json() == scanned
    # empty output: llm_guard.scan_output runs no scanner; /scan/output calls NoRefusal itself
    empty = {"prompt": "p", "output": " "}
    assert http.post("/analyze/output", json=empty).json()["scanners"] == {}
    assert http.post("/scan/output", json=empty).json()["scanners"] == {"NoRefusal": -1.0}
    # prompt is required there, as in LLM Guard API
    missing = http.post("/scan/output", json={"output": "x"})
    assert missing.status_code == 422
    assert missing.json()["message"] == "Validation failed"
    assert missing.json()["details"][0]["loc"] == ["body", "prompt"]


# -- LLM Guard API: the published schema -------------------------------------------------------

# From protectai/llm-guard, llm_guard_api/openapi.json at commit
# 32b14a4a2fa398df8b77fd748ee4bd387a4ac5ce (the models are llm_guard_api/app/schemas.py, unchanged
# at ca87fdc744e820c887332b9c6c4e37cdaa05b069): the facts an LLM Guard API client relies on.
_REQUEST = {
    "properties": {
        "prompt": {"type": "string", "title": "Prompt"},
        "output": {"type": "string", "title": "Model output"},
        "scanners_suppress": {
            "items": {"type": "string"},
            "type": "array",
            "title": "Scanners to suppress",
            "default": [],
        },
    },
    "type": "object",
    "required": ["prompt", "output"],
}
_SCAN_RESPONSE = {
    "properties": {
        "is_valid": {"type": "boolean", "title": "Whether the output is safe"},
        "scanners": {
            "additionalProperties": {"type": "number"},
            "type": "object",
            "title": "Risk scores of individual scanners",
        },
    },
    "type": "object",
    "required": ["is_valid", "scanners"],
}
_ANALYZE_RESPONSE = {
    "properties": {
        **_SCAN_RESPONSE["properties"],  # type: ignore[dict-item]
        "sanitized_output": {"type": "string", "title": "Sanitized output"},
    },
    "type": "object",
    "required": ["is_valid", "scanners", "sanitized_output"],
}
LLM_GUARD_API = {
    "/analyze/output": (
        "AnalyzeOutputRequest",
        _REQUEST,
        "AnalyzeOutputResponse",
        _ANALYZE_RESPONSE,
    ),
    "/scan/output": ("ScanOutputRequest", _REQUEST, "ScanOutputResponse", _SCAN_RESPONSE),
}


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ref = schema["$ref"]
    name = ref.rsplit("/", 1)[-1]
    return name, spec["components"]["schemas"][name]


@pytest.mark.parametrize("path", sorted(LLM_GUARD_API))
def test_openapi_matches_llm_guard_api(path: str) -> None:
    spec = create_app(ServeSettings()).openapi()
    request_name, request, response_name, response = LLM_GUARD_API[path]
    post = spec["paths"][path]["post"]
    assert post["requestBody"]["required"] is True
    got_name, got = _resolve(post["requestBody"]["content"]["application/json"]["schema"], spec)
    assert got_name == request_name
    assert {k: got[k] for k in request} == request
    ok = post["responses"]["200"]["content"]["application/json"]["schema"]
    got_name, got = _resolve(ok, spec)
    assert got_name == response_name
    assert {k: got[k] for k in response} == response
    assert {"HTTPBearer": []} in post["security"]
    # LLM Guard API answers validation errors as 422 {"message": ..., "details": [...]}
    # (its app.py handler), whatever its generated schema says: so do we, and say so.
    _, error = _resolve(post["responses"]["422"]["content"]["application/json"]["schema"], spec)
    assert set(error["properties"]) == {"message", "details"}


def test_v1_routes_are_in_the_schema() -> None:
    paths = create_app(ServeSettings()).openapi()["paths"]
    assert {"/v1/scan", "/v1/scan/batch", "/v1/info", "/healthz", "/readyz", "/metrics"} <= set(
        paths
    )


# -- probes and metrics ------------------------------------------------------------------------


def test_probes_info_and_metrics(http: httpx2.Client, local: NoRefusalScanner) -> None:
    assert http.get("/healthz").json() == {"status": "alive"}
    assert http.get("/readyz").json() == {"status": "ready"}
    info = http.get("/v1/info").json()
    assert info["model"] == "default"
    assert info["threshold"] == local.threshold
    assert info["max_batch"] == 64
    http.post("/v1/scan", json={"output": "I'm sorry, but I can't help with that."})
    http.post("/v1/scan", json={"output": 3})
    text = http.get("/metrics").text
    assert 'norefusal_requests_total{route="/v1/scan",status="200"}' in text
    assert 'norefusal_requests_total{route="/v1/scan",status="422"}' in text
    for name in (
        "norefusal_request_duration_seconds_bucket",
        "norefusal_refusals_total",
        "norefusal_scans_total",
        "norefusal_queue_depth",
        "norefusal_batch_size_bucket",
    ):
        assert name in text
    assert "norefusal_queue_depth 0.0" in text


def test_v1_scan_returns_every_field(http: httpx2.Client, local: NoRefusalScanner) -> None:
    output = "I'm sorry, but I can't help with that."
    body = http.post("/v1/scan", json={"output": output}).json()
    assert set(body) == set(local.scan("", output).to_dict())
    echoed = http.post("/v1/scan", json={"output": output, "include_output": True}).json()
    assert echoed == {**body, "sanitized": output}
