"""Hardening, hostile input: whatever text or structure arrives, a valid result or a documented
error, the same verdict for the same input, and bounded cost.

Bounds asserted here (and stated in SECURITY.md):

- tokenized characters per model input: at most ``max_tokens * 12`` whatever the output's
  length (the windowed encoder keeps a head and a tail window, each sized to its token budget);
- padding: whitespace, invisible characters and stray combining marks take no room in those
  windows, in any amount and anywhere: a padded output scores as the unpadded one, and a
  refusal followed by padding (and a last line) stays in the tail window;
- keyword backend: at most 2 * 4,000 characters matched per output;
- memory: the peak traced allocation of one scan of a 10 MB output stays within 4x the
  output's own size in memory (the text is checked for lone surrogates, and copied once to
  replace them), and within 6x for a stream monitor fed the same output in pieces (it keeps
  the text it was given, then joins it);
- prompts: a conversation of any length reaches the model as its last 600 characters.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
import tracemalloc
import unicodedata
import uuid
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest
from _openai_fakes import BASE_URL, chat_choice, chat_completion, no_network
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from norefusal import NoRefusalScanner, ScanResult, Signal
from norefusal._text import PLACEHOLDER, PROMPT_CHARS, InputFormat, format_input, role_tagged
from norefusal.integrations._langchain_messages import message_candidate, prompt_text
from norefusal.integrations._openai_request import Endpoint, build_prompt
from norefusal.integrations.langchain import NoRefusalCallbackHandler
from norefusal.integrations.openai import GuardedOpenAI
from norefusal.policies import Candidate, Guard, Policy, PolicyError
from norefusal.policies._engine import allowlisted

__all__ = ["no_network"]  # autouse fixture: no test here may reach the network

MB = 1_000_000
SPECIALS = [
    "\x00",
    "\x07",
    "\x1b[31m",
    "\r\n",
    "\u202e",  # right-to-left override
    "\u202d",
    "\u2066",
    "\u200f",
    "\u200b",
    "\ufeff",
    "\ud800",  # lone surrogates
    "\udfff",
    "\ud83d",
    "\U0001f645",
    "e\u0301\u0301\u0301",
    "<|user|>",
    "<|assistant|>",
    "<|system|>",
    PLACEHOLDER,
    "I'm sorry, but I can't help with that.",
    "I\u2019m not able to assist",
    "Sure, here it is.",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    "\uffff",
    "\U0010ffff",
]

#: Any code point, lone surrogates included, mixed with the specials above.
hostile = st.lists(
    st.one_of(
        st.sampled_from(SPECIALS),
        st.text(st.characters(exclude_categories=()), max_size=30),
    ),
    max_size=40,
).map("".join)

FAST = settings(max_examples=120, deadline=None)
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_result(result: ScanResult, output: str) -> None:
    """The documented shape of every result."""
    sanitized, valid, risk = result
    assert sanitized == output  # the output exactly as given, never altered
    assert 0.0 <= result.score <= 1.0
    assert -1.0 <= risk <= 1.0
    assert valid is (not result.is_refusal)
    assert result.signal in (Signal.CLASSIFIER, Signal.EMPTY)
    if not output.strip():
        assert result.signal is Signal.EMPTY
        assert valid


def same(a: ScanResult, b: ScanResult) -> bool:
    return (*a, a.score, a.is_refusal, a.signal) == (*b, b.score, b.is_refusal, b.signal)


# -- scanner: any text -----------------------------------------------------------------------


@FAST
@given(prompt=hostile, output=hostile)
def test_keyword_scan_of_any_text(
    keyword_scanner: NoRefusalScanner, prompt: str, output: str
) -> None:
    first = keyword_scanner.scan(prompt, output)
    check_result(first, output)
    assert same(keyword_scanner.scan(prompt, output), first)  # same input, same verdict
    batch = keyword_scanner.scan_batch([(prompt, output), ("", "filler"), (prompt, output)])
    assert same(batch[0], first)
    assert same(batch[2], first)


@pytest.fixture(scope="module")
def default_scanner() -> NoRefusalScanner:
    """The embedded default model: its real WordPiece tokenizer meets the hostile text."""
    scanner = NoRefusalScanner()
    scanner.load()
    return scanner


@pytest.mark.parametrize("which", ["onnx", "default"])
@SLOW
@given(prompt=hostile, output=hostile)
def test_onnx_scan_of_any_text(
    which: str, request: pytest.FixtureRequest, prompt: str, output: str
) -> None:
    scanner: NoRefusalScanner = request.getfixturevalue(f"{which}_scanner")
    first = scanner.scan(prompt, output)
    check_result(first, output)
    assert same(scanner.scan(prompt, output), first)


# -- padding: whitespace and invisible characters, in any amount, anywhere ------------------

PREAMBLE = "Here is a detailed overview of the history of the region and its economy. " * 20
LATE_REFUSAL = PREAMBLE + "I'm sorry, but I can't help with that request."
#: What a tokenizer drops or reads as nothing: the windows must never be filled with it.
PADDING = {
    "newlines": "\n",
    "spaces": " ",
    "tabs": "\t",
    "CRLF": "\r\n",
    "NBSP": "\u00a0",
    "ideographic space": "\u3000",
    "line separator": "\u2028",
    "zero-width space": "\u200b",
    "ZWNJ": "\u200c",
    "ZWJ": "\u200d",
    "word joiner": "\u2060",
    "BOM": "\ufeff",
    "soft hyphen": "\u00ad",
    "bidi isolate": "\u2066",
    "NUL": "\x00",
    "escape": "\x1b",
    "combining mark": "\u0301",
    "variation selector": "\ufe0f",
    "astral mark": "\U0001d167",
    "tag": "\U000e0020",
    "private use": "\ue000",
    "replacement character": "\ufffd",
    "mixed": " \u200b\n\u00a0\u2060\ufeff\u0301\t",
}


@pytest.mark.parametrize("which", ["default", "keyword"])
def test_padding_never_hides_a_late_refusal(which: str, request: pytest.FixtureRequest) -> None:
    """A refusal at the end of a long answer, padded after it, before the answer, between the
    preamble and the refusal, or followed by padding and a last line: still a refusal, and
    the padding changes nothing the model reads. 5,000 characters of padding is more than
    any window (the keyword backend's are 4,000 characters), and cost is bounded apart."""
    scanner: NoRefusalScanner = request.getfixturevalue(f"{which}_scanner")
    count = 5_000
    plain = scanner.scan("q", LATE_REFUSAL)
    assert plain.is_refusal
    cases = {
        (name, where): text
        for name, char in PADDING.items()
        for where, text in {
            "after": LATE_REFUSAL + char * count,
            "before": char * count + LATE_REFUSAL,
            "between and after": PREAMBLE
            + char * count
            + LATE_REFUSAL[len(PREAMBLE) :]
            + char * count,
        }.items()
    }
    results = dict(zip(cases, scanner.scan_batch(("q", t) for t in cases.values()), strict=True))
    assert {case: r.score for case, r in results.items()} == dict.fromkeys(cases, plain.score)
    assert all(r.sanitized is cases[case] for case, r in results.items())
    last_line = {name: LATE_REFUSAL + char * count + "\nThanks." for name, char in PADDING.items()}
    found = scanner.scan_batch(("q", t) for t in last_line.values())
    assert dict(zip(last_line, (r.is_refusal for r in found), strict=True)) == dict.fromkeys(
        last_line, True
    )


@pytest.mark.parametrize("which", ["onnx", "roberta"])
def test_padding_at_either_end_changes_no_score(which: str, request: pytest.FixtureRequest) -> None:
    """Whatever the tokenizer: WordPiece, or RoBERTa's byte-level BPE, which reads whitespace.
    Marks after the last character are its accents: it keeps three, as it would unpadded."""
    scanner: NoRefusalScanner = request.getfixturevalue(f"{which}_scanner")
    texts: dict[tuple[str, str], tuple[str, str]] = {}
    for name, char in PADDING.items():
        ending = char * 3 if unicodedata.category(char[-1]) == "Mn" else ""
        for text in ("Sure, here it is.", LATE_REFUSAL):
            expected = text + ending
            texts[name, text] = (expected, char * 2_000 + text + char * 2_000)
    flat = [t for pair in texts.values() for t in pair]
    scores = [r.score for r in scanner.scan_batch(("q", t) for t in flat)]
    got = {case: (scores[2 * i], scores[2 * i + 1]) for i, case in enumerate(texts)}
    assert got == {case: (a, a) for case, (a, _) in got.items()}


def test_padding_alone_is_an_empty_output(keyword_scanner: NoRefusalScanner) -> None:
    for result in keyword_scanner.scan_batch(("q", c * 1_000) for c in PADDING.values()):
        assert (result.signal, result.valid, result.risk) == (Signal.EMPTY, True, -1.0)


@SLOW
@given(prompt=hostile, output=hostile)
def test_conversation_format_model_on_any_text(
    bert_scanner: NoRefusalScanner, prompt: str, output: str
) -> None:
    """The agentlans-style model also reads the prompt: role tags in it cannot break it."""
    first = bert_scanner.scan(prompt, output)
    check_result(first, output)
    assert same(bert_scanner.scan(prompt, output), first)


@FAST
@given(output=hostile, cuts=st.lists(st.integers(0, 400), max_size=6))
def test_a_stream_of_any_text_in_any_pieces(
    keyword_scanner: NoRefusalScanner, output: str, cuts: list[int]
) -> None:
    monitor = keyword_scanner.stream("prompt")
    bounds = sorted({0, len(output), *(min(c, len(output)) for c in cuts)})
    for start, end in itertools.pairwise(bounds):
        verdict = monitor.feed(output[start:end])
        assert verdict is None or verdict.is_refusal
    final = monitor.finish()
    assert 0.0 <= final.score <= 1.0
    assert monitor.length == len(output)
    assert monitor.scans <= 4  # three checkpoints and the final scan, whatever the text
    if not any("\ud800" <= ch <= "\udfff" for ch in output):
        # Without lone surrogates (which each piece replaces on its own), a stream's final
        # verdict is the verdict on the whole text.
        assert same(final, keyword_scanner.scan("prompt", output))


@FAST
@given(output=hostile, prompt=hostile)
def test_guard_check_of_any_text(
    keyword_scanner: NoRefusalScanner, prompt: str, output: str
) -> None:
    guard = Guard(
        Policy.from_dict(
            {
                "name": "hostile",
                "timeout_s": 60,
                "sample_rate": 0.5,  # the sampling hash reads lone surrogates too
                "allowlist": [
                    "Blocked.",
                    {"regex": r"Request \d+ was blocked\.", "ignore_case": True},
                    {"regex": ".*blocked by .* filter.*"},
                ],
            }
        ),
        scanner=keyword_scanner,
    )
    first = guard.check(prompt, Candidate(output))
    assert 0.0 <= first.score <= 1.0
    assert first.signal in (Signal.CLASSIFIER, Signal.EMPTY, Signal.ALLOWLIST, Signal.SKIPPED)
    assert same(guard.check(prompt, Candidate(output)), first)


#: Patterns that backtrack exponentially in Python's re, each with the output that hurts it
#: most: ``(a|a)*b`` on 26 characters took 3.1 s, and each extra character doubles it.
REDOS = {
    r"(a|a)*b": "a" * 40,
    r"(?:a?){26}a{26}": "a" * 26 + "b",
    r"(a|aa)+$": "a" * 40 + "b",
    r"(a+)+b": "a" * 40,
    r"(\w+\s?)*$": "word " * 30 + "!",
    r"(?:x*)*y": "x" * 40,
    r"((ab)*c)+": "ab" * 40,
    r"(.+)*!": "x" * 40,
    r"(?:a|ab|abc)*d": "abc" * 30,
    r"([a-z]+\s*)+=": "abc def " * 20,
}
#: How long a child process may take for all of them: a held check never ends, and in
#: Python's re it holds the GIL too, so only a separate process can be stopped and reported.
BOUND_S = 120.0
_CHECK_EACH = """
import json, sys
from norefusal import NoRefusalScanner
from norefusal.policies import Candidate, Guard, Policy

scanner = NoRefusalScanner(model="keyword")
scanner.load()
signals = {}
for regex, text in json.loads(sys.argv[1]).items():
    policy = {"name": "redos", "timeout_s": 0.2, "allowlist": [{"regex": regex}]}
    guard = Guard(Policy.from_dict(policy), scanner=scanner)
    signals[regex] = guard.check("q", Candidate(text)).signal.value
print(json.dumps(signals))
"""


def test_no_allowlist_regex_holds_a_caller_past_timeout_s() -> None:
    """Outputs are model-written: RE2 matches in time linear in them, so these shapes, which
    backtrack for days in Python's re, are accepted and cost a check nothing (before: refused
    at load, or accepted and held the caller)."""
    done = subprocess.run(
        [sys.executable, "-c", _CHECK_EACH, json.dumps(REDOS)],
        capture_output=True,
        text=True,
        timeout=BOUND_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    signals = json.loads(done.stdout)
    # Not allow-listed: then scanned (or, on a machine too busy to scan within 0.2 s, decided
    # by on_error), but never held by the pattern.
    assert set(signals) == set(REDOS)
    assert set(signals.values()) <= {"classifier", "error"}


@pytest.mark.parametrize(
    ("regex", "why"),
    [
        (r"(a)\1", "backreferences"),
        (r"(?=(a+)+)a", "lookaround"),
        (r"(?<!x)a", "lookaround"),
        (r"(a++)+b", "possessive"),
        (r"(?>a+)+b", "atomic"),
        (r"(?:a|aa|aaa|b?){1000}", "instructions"),
        (r"(open", "missing \\)"),
    ],
)
def test_an_allowlist_regex_rre2_cannot_run_is_a_policy_error(regex: str, why: str) -> None:
    with pytest.raises(PolicyError, match=why) as info:
        Policy.from_dict({"name": "x", "allowlist": [{"regex": regex}]})
    assert [p.field for p in info.value.problems] == ["allowlist.0.regex"]


def test_the_allowlist_starts_no_regex_past_the_deadline() -> None:
    """The allow-list's regexes and the classifier share a check's timeout_s."""
    policy = Policy.from_dict({"name": "x", "allowlist": [{"regex": "blocked .*"}]})
    now = time.monotonic()
    assert allowlisted(policy, "blocked by the filter", deadline=now + 60)
    assert not allowlisted(policy, "blocked by the filter", deadline=now - 1)
    # Exact text costs nothing and is always tried.
    exact = Policy.from_dict({"name": "x", "allowlist": ["Blocked."]})
    assert allowlisted(exact, "Blocked.", deadline=now - 1)


def test_allowlist_regexes_keep_their_meaning_on_crafted_outputs(
    keyword_scanner: NoRefusalScanner,
) -> None:
    patterns = [r".*blocked by .* filter.*", r"(?:foo|bar)+!", r"Request \d+ was blocked\."]
    guard = Guard(
        Policy.from_dict({"name": "ok", "allowlist": [{"regex": p} for p in patterns]}),
        scanner=keyword_scanner,
    )
    for crafted in ("a" * 3_999 + "c", "blocked by " * 360, "foo" * 1_300):
        assert guard.check("q", Candidate(crafted)).signal is Signal.CLASSIFIER
    for allowed in ("x\nblocked by the\nAcme filter", "foobar!", "Request 42 was blocked."):
        assert guard.check("q", Candidate(allowed)).signal is Signal.ALLOWLIST


yaml_text = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "name: x\n",
                "action: raise\n",
                "allowlist:\n",
                "  - ",
                "{",
                "}",
                "[",
                "]",
                ": ",
                "&a ",
                "*a ",
                "!!python/object:os.system ",
                "\t",
                "\x00",
                "'",
                '"',
                "\n",
                "- ",
                "scanner:\n  model: ",
                "${HOME}",
                "timeout_s: 1e9\n",
                "retries: -1\n",
            ]
        ),
        hostile,
    ),
    max_size=30,
).map("".join)


@FAST
@given(text=yaml_text)
def test_a_policy_from_any_text_is_a_policy_or_a_policy_error(text: str) -> None:
    outcome: Policy | PolicyError
    try:
        outcome = Policy.from_yaml(text)
    except PolicyError as exc:  # the documented error; anything else fails the test
        outcome = exc
    assert isinstance(outcome, Policy) or outcome.problems


@pytest.mark.parametrize(
    "text",
    [
        "name: x\nallowlist: " + "[" * 5_000 + "]" * 5_000,
        "name: x\nscanner: " + "{a: " * 3_000 + "1" + "}" * 3_000,
        '{"name": "x", "scanner": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "}",
        "name: x\n" + "".join(f"k{i}: 1\n" for i in range(5_000)),
    ],
    ids=["deep list", "deep mapping", "deep json", "5000 unknown keys"],
)
def test_hostile_policy_files_end_in_a_policy_error(text: str) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml(text)
    assert len(info.value.problems) <= 21  # a bounded report, not one line per key


def test_a_deeply_nested_policy_mapping_is_a_policy_error() -> None:
    nested: dict[str, Any] = {"a": 1}
    for _ in range(20_000):
        nested = {"a": nested}
    for field in ("allowlist", "name", "scanner"):
        with pytest.raises(PolicyError):
            Policy.from_dict({"name": "x", field: nested})


# -- structures: messages and content blocks --------------------------------------------------

leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), hostile, st.binary()
)
block = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(["type", "text", "content", "value", "refusal", "role", "x"]),
            inner,
            max_size=4,
        ),
        st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "output_text", "input_text", "refusal", "image"])},
            optional={"text": inner, "refusal": inner},
        ),
    ),
    max_leaves=25,
)
message = st.one_of(
    block,
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "x"])},
        optional={"content": block, "type": st.sampled_from(["message", "function_call"])},
    ),
)


@FAST
@given(messages=st.one_of(block, st.lists(message, max_size=8)))
def test_role_tagged_takes_any_structure(messages: Any) -> None:
    """A string, or the documented TypeError for what is not a list of mappings."""
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        with pytest.raises(TypeError, match="must be a"):
            role_tagged(messages)
        return
    got = role_tagged(messages)
    assert isinstance(got, str)
    assert got == role_tagged(messages)


@FAST
@given(messages=st.lists(message, max_size=8), user_input=st.one_of(block, hostile))
def test_openai_prompt_building_takes_any_structure(messages: Any, user_input: Any) -> None:
    """The guard reads request bodies defensively: never an error of its own."""
    for body in (
        {"messages": messages},
        {"input": user_input, "instructions": user_input},
        {"messages": user_input},
    ):
        for endpoint in Endpoint:
            got = build_prompt(endpoint, body)
            assert isinstance(got, str)
            assert got == build_prompt(endpoint, body)


REPLACE = Policy.from_dict(
    {"name": "replace", "action": "replace", "replacement": "Replaced.", "timeout_s": 60}
)
anything = st.one_of(st.none(), st.booleans(), st.integers(), hostile, st.lists(st.integers()))

lc_content = st.one_of(
    hostile,
    st.lists(
        st.one_of(
            hostile,
            st.fixed_dictionaries(
                {"type": st.one_of(st.sampled_from(["text", "refusal", "non_standard"]), anything)},
                optional={"text": hostile, "refusal": hostile, "value": block},
            ),
        ),
        max_size=5,
    ),
)


@FAST
@given(content=lc_content, kwargs_refusal=st.one_of(st.none(), hostile, st.integers()))
def test_langchain_messages_of_any_content(content: Any, kwargs_refusal: Any) -> None:
    extra = {} if kwargs_refusal is None else {"refusal": kwargs_refusal}
    ai = AIMessage(content=content, additional_kwargs=extra)
    candidate = message_candidate(ai)
    assert candidate.text is None or isinstance(candidate.text, str)
    assert candidate == message_candidate(ai)
    assert isinstance(prompt_text([SystemMessage(content), HumanMessage(content)]), str)


@FAST
@given(prompt=st.one_of(block, st.lists(st.one_of(block, st.tuples(block, block)), max_size=5)))
def test_langchain_prompts_of_any_shape(prompt: Any) -> None:
    """Whatever a chain is invoked with, the prompt is a string (maybe empty), never an error."""
    got = prompt_text(prompt)
    assert isinstance(got, str)
    assert got == prompt_text(prompt)


def nested_non_standard(depth: int) -> dict[str, Any]:
    inner: dict[str, Any] = {"type": "refusal", "refusal": "I can't."}
    for _ in range(depth):
        inner = {"type": "non_standard", "value": inner}
    return inner


@pytest.mark.parametrize("depth", [1, 8, 10_000])
def test_deeply_nested_content_blocks(keyword_scanner: NoRefusalScanner, depth: int) -> None:
    """A payload can nest blocks without limit; reading them must not overflow the stack."""
    ai = AIMessage(content=[nested_non_standard(depth)])
    candidate = message_candidate(ai)
    # Up to 8 non_standard wrappers are unwrapped; a deeper payload is no provider signal
    # (its text, if any, still goes to the classifier).
    assert (candidate.refusal is not None) is (depth <= 8)
    nested: list[Any] = ["the text"]
    for _ in range(depth):
        nested = [nested]
    assert role_tagged([{"role": "user", "content": nested}]) == "<|user|>"
    assert build_prompt(Endpoint.CHAT, {"messages": [{"role": "user", "content": nested}]}) == ""
    handler = NoRefusalCallbackHandler(guard=Guard("monitor", scanner=keyword_scanner))
    run_id = uuid.uuid4()
    asked = HumanMessage(content=[nested_non_standard(depth)])
    handler.on_chat_model_start({}, [[asked]], run_id=run_id)
    handler.on_llm_end(LLMResult(generations=[[ChatGeneration(message=ai)]]), run_id=run_id)
    assert handler.results[run_id].action in ("pass", "flag")


sse_choice = st.fixed_dictionaries(
    {},
    optional={
        "index": st.one_of(st.integers(-2, 3), st.just(10**12), st.text(max_size=2)),
        "delta": st.one_of(
            anything,
            st.fixed_dictionaries(
                {},
                optional={
                    "content": st.one_of(hostile, anything),
                    "refusal": st.one_of(hostile, anything),
                    "role": st.sampled_from(["assistant", "tool", 7]),
                },
            ),
        ),
        "finish_reason": st.sampled_from([None, "stop", "content_filter", "length", 3]),
    },
)
sse_chunk = st.fixed_dictionaries(
    {"object": st.just("chat.completion.chunk")},
    optional={
        "id": st.one_of(hostile, st.integers()),
        "choices": st.one_of(st.none(), anything, st.lists(sse_choice, max_size=3)),
        "created": anything,
        "model": anything,
    },
)


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic, dumping malformed chunks
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(sse_chunk, max_size=12), done=st.booleans())
def test_a_malformed_stream_reads_exactly_like_the_unguarded_client(
    keyword_scanner: NoRefusalScanner, chunks: list[dict[str, Any]], done: bool
) -> None:
    """Whatever the upstream sends, the guard adds no error of its own and drops nothing."""
    body = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks)
    body += b"data: [DONE]\n\n" if done else b""

    def handle(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    def read(client: Any) -> tuple[list[Any], type[BaseException] | None]:
        got: list[Any] = []
        try:
            ask: Any = {"model": "m", "messages": [{"role": "user", "content": "q"}]}
            for chunk in client.chat.completions.create(stream=True, **ask):
                got.append(chunk.to_dict())
        except Exception as exc:
            return got, type(exc)
        return got, None

    options: Any = {"api_key": "sk-test", "base_url": BASE_URL, "max_retries": 0}
    plain = openai.OpenAI(
        http_client=httpx2.Client(transport=httpx2.MockTransport(handle)), **options
    )
    guarded = GuardedOpenAI(
        http_client=httpx2.Client(transport=httpx2.MockTransport(handle)),
        guard=Guard(Policy.from_dict({"name": "flag", "timeout_s": 60}), scanner=keyword_scanner),
        **options,
    )
    expected = read(plain)
    assert read(guarded) == expected
    # A replacement may end the stream early, with a synthetic last chunk or event, but it
    # never raises an error the client itself would not have raised.
    replacing = GuardedOpenAI(
        http_client=httpx2.Client(transport=httpx2.MockTransport(handle)),
        guard=Guard(REPLACE, scanner=keyword_scanner),
        **options,
    )
    assert read(replacing)[1] in (None, expected[1])


responses_event = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            [
                "response.created",
                "response.output_item.added",
                "response.output_text.delta",
                "response.refusal.delta",
                "response.output_item.done",
                "response.incomplete",
                "response.completed",
                "response.unknown",
            ]
        )
    },
    optional={
        "sequence_number": anything,
        "output_index": st.one_of(st.integers(-1, 2), anything),
        "content_index": anything,
        "item_id": anything,
        "delta": st.one_of(hostile, anything),
        "item": st.one_of(anything, st.just({"type": "message", "content": []})),
        "response": st.one_of(
            anything,
            st.fixed_dictionaries(
                {},
                optional={
                    "incomplete_details": st.one_of(
                        anything, st.just({"reason": "content_filter"})
                    ),
                    "output": anything,
                },
            ),
        ),
    },
)


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic, dumping malformed events
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(responses_event, max_size=10))
def test_a_malformed_responses_stream_reads_exactly_like_the_unguarded_client(
    keyword_scanner: NoRefusalScanner, events: list[dict[str, Any]]
) -> None:
    body = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events)

    def handle(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    def read(client: Any) -> tuple[list[Any], type[BaseException] | None]:
        got: list[Any] = []
        try:
            for event in client.responses.create(model="m", input="q", stream=True):
                got.append(event.to_dict())
        except Exception as exc:
            return got, type(exc)
        return got, None

    options: Any = {"api_key": "sk-test", "base_url": BASE_URL, "max_retries": 0}
    plain = openai.OpenAI(
        http_client=httpx2.Client(transport=httpx2.MockTransport(handle)), **options
    )
    guarded = GuardedOpenAI(
        http_client=httpx2.Client(transport=httpx2.MockTransport(handle)),
        guard=Guard(Policy.from_dict({"name": "flag", "timeout_s": 60}), scanner=keyword_scanner),
        **options,
    )
    expected = read(plain)
    assert read(guarded) == expected
    # A replacement may end the stream early, with a synthetic last chunk or event, but it
    # never raises an error the client itself would not have raised.
    replacing = GuardedOpenAI(
        http_client=httpx2.Client(transport=httpx2.MockTransport(handle)),
        guard=Guard(REPLACE, scanner=keyword_scanner),
        **options,
    )
    assert read(replacing)[1] in (None, expected[1])


completion_body = st.fixed_dictionaries(
    {"object": st.just("chat.completion")},
    optional={
        "id": anything,
        "model": anything,
        "choices": st.one_of(
            anything,
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "index": anything,
                        "finish_reason": st.sampled_from([None, "stop", "content_filter", 1]),
                        "message": st.one_of(
                            anything,
                            st.fixed_dictionaries(
                                {},
                                optional={
                                    "content": st.one_of(hostile, anything),
                                    "refusal": st.one_of(hostile, anything),
                                    "role": anything,
                                },
                            ),
                        ),
                    },
                ),
                max_size=3,
            ),
        ),
    },
)
responses_body = st.fixed_dictionaries(
    {"object": st.just("response")},
    optional={
        "status": anything,
        "incomplete_details": st.one_of(anything, st.just({"reason": "content_filter"})),
        "output": st.one_of(
            anything,
            st.lists(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["message", "reasoning", 3])},
                    optional={
                        "content": st.one_of(
                            anything,
                            st.lists(
                                st.fixed_dictionaries(
                                    {"type": st.sampled_from(["output_text", "refusal", None])},
                                    optional={"text": anything, "refusal": anything},
                                ),
                                max_size=3,
                            ),
                        )
                    },
                ),
                max_size=3,
            ),
        ),
    },
)


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic, dumping malformed chunks
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chat=completion_body, response=responses_body)
def test_a_malformed_body_reads_exactly_like_the_unguarded_client(
    keyword_scanner: NoRefusalScanner, chat: dict[str, Any], response: dict[str, Any]
) -> None:
    def handle(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, json=chat if request.url.path.endswith("/chat/completions") else response
        )

    def read(client: Any) -> list[Any]:
        got: list[Any] = []
        calls: list[Callable[[], Any]] = [
            lambda: client.chat.completions.create(model="m", messages=[]),
            lambda: client.responses.create(model="m", input="q"),
        ]
        for call in calls:
            try:
                got.append(call().to_dict())
            except Exception as exc:
                got.append(type(exc))
        return got

    options: Any = {"api_key": "sk-test", "base_url": BASE_URL, "max_retries": 0}
    plain = openai.OpenAI(
        http_client=httpx2.Client(transport=httpx2.MockTransport(handle)), **options
    )
    guarded = GuardedOpenAI(
        http_client=httpx2.Client(transport=httpx2.MockTransport(handle)),
        guard=Guard(Policy.from_dict({"name": "flag", "timeout_s": 60}), scanner=keyword_scanner),
        **options,
    )
    expected = read(plain)
    assert read(guarded) == expected
    replacing = GuardedOpenAI(
        http_client=httpx2.Client(transport=httpx2.MockTransport(handle)),
        guard=Guard(REPLACE, scanner=keyword_scanner),
        **options,
    )
    for got, plain_got in zip(read(replacing), expected, strict=True):
        if isinstance(got, type):  # an error only where the client itself raised one
            assert got is plain_got


# -- size: 10 MB outputs, 100k-message conversations ------------------------------------------

TEN_MB = ("Paris is lovely in spring and in autumn. " * 250_000)[: 10 * MB]


def peak_bytes(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("which", ["keyword", "onnx", "default"])
@pytest.mark.parametrize(
    "variant", ["ascii", "lone surrogate", "refusal at the end", "refusal, then 9 MB of padding"]
)
def test_a_10_mb_output_costs_bounded_memory(
    which: str, variant: str, request: pytest.FixtureRequest
) -> None:
    scanner: NoRefusalScanner = request.getfixturevalue(f"{which}_scanner")
    output = {
        "ascii": TEN_MB,
        "lone surrogate": TEN_MB[: 5 * MB] + "\ud800" + TEN_MB[5 * MB + 1 :],
        "refusal at the end": TEN_MB + " I'm sorry, but I can't help with that.",
        "refusal, then 9 MB of padding": TEN_MB[:MB]
        + " I'm sorry, but I can't help with that."
        + ("\n \u200b\u00a0\t\ufeff" * (2 * MB))[: 9 * MB],
    }[variant]
    size = sys.getsizeof(output)
    results: list[ScanResult] = []
    assert peak_bytes(lambda: results.append(scanner.scan("q", output))) < 4 * size
    (result,) = results
    check_result(result, output)
    if which != "onnx":  # the keyword backend and the real model read the tail: a refusal
        # there is found, padded or not (the tiny ONNX model has random weights)
        assert result.is_refusal is variant.startswith("refusal")

    monitor = scanner.stream("q")

    def stream() -> None:
        for start in range(0, len(output), 256 * 1024):
            monitor.feed(output[start : start + 256 * 1024])
        results.append(monitor.finish())

    assert peak_bytes(stream) < 6 * size
    assert monitor.scans <= 4


@pytest.mark.parametrize("which", ["onnx", "default"])
def test_tokenized_characters_per_scan_are_bounded(
    which: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx_scanner: NoRefusalScanner = request.getfixturevalue(f"{which}_scanner")
    backend: Any = onnx_scanner.load()
    encoder = backend._encoder
    seen: list[int] = []
    real = encoder._tok

    class Recording:
        def encode_batch(self, texts: list[str], **kwargs: Any) -> Any:
            seen.extend(len(t) for t in texts)
            return real.encode_batch(texts, **kwargs)

    monkeypatch.setattr(encoder, "_tok", Recording())
    padding = " \n\u200b\u00a0\u0301\ufeff" * 200_000
    for length in (10, 5_000, 100_000, 10 * MB):
        for output in (TEN_MB[:length], padding + TEN_MB[:length] + padding):
            seen.clear()
            onnx_scanner.scan("q", output)
            assert sum(seen) <= encoder.max_tokens * 12


def conversation(n: int) -> list[dict[str, Any]]:
    roles = ("user", "assistant", "tool", "system")
    return [
        {"role": roles[i % 4], "content": f"turn {i} " + "\u202e\x00" * (i % 3)} for i in range(n)
    ]


def test_a_100k_message_conversation(keyword_scanner: NoRefusalScanner) -> None:
    messages = conversation(100_000)
    tagged = role_tagged(messages)
    assert tagged.startswith("<|user|>turn 0")
    assert tagged.endswith("<|assistant|>turn 99997 \u202e\x00<|system|>turn 99999 ")
    model_input = format_input(tagged, "the answer", InputFormat.CONVERSATION)
    assert len(model_input) <= PROMPT_CHARS + len(PLACEHOLDER) + len("<|assistant|>the answer")
    prompt = build_prompt(Endpoint.CHAT, {"messages": messages})
    assert prompt.endswith("<|assistant|>turn 99997 \u202e\x00<|system|>turn 99999 ")
    lc: list[BaseMessage] = [
        HumanMessage(m["content"]) if i % 2 else AIMessage(m["content"])
        for i, m in enumerate(messages)
    ]
    assert prompt_text(lc) == "turn 99999 "
    handler = NoRefusalCallbackHandler(guard=Guard("monitor", scanner=keyword_scanner))
    run_id = uuid.uuid4()
    handler.on_chat_model_start({}, [lc], run_id=run_id)
    answer = LLMResult(generations=[[ChatGeneration(message=AIMessage("I can't do that."))]])
    handler.on_llm_end(answer, run_id=run_id)
    assert handler.results[run_id].refused


def test_a_10k_message_request_through_the_guarded_client(
    keyword_scanner: NoRefusalScanner,
) -> None:
    """End to end (the openai client's own request building costs ~0.1 ms a message; the
    guard's prompt building over 100k messages is tested above)."""
    sizes: list[int] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        sizes.append(len(json.loads(request.content)["messages"]))
        return httpx2.Response(200, json=chat_completion(chat_choice("I can't help with that.")))

    client = GuardedOpenAI(
        api_key="sk-test",
        base_url=BASE_URL,
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handle)),
        guard=Guard("monitor", scanner=keyword_scanner),
    )
    messages: Any = [
        {"role": m["role"] if m["role"] != "tool" else "user", "content": m["content"]}
        for m in conversation(10_000)
    ]
    completion = client.chat.completions.create(model="m", messages=messages)
    assert completion.choices[0].message.content == "I can't help with that."
    assert sizes == [10_000]
    client.close()
