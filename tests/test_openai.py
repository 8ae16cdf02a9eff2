"""The OpenAI integration on non-streamed calls: the real client over a fake transport."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pydantic
import pytest
from _openai_fakes import (
    ANSWER,
    MESSAGES,
    REFUSAL,
    REPLACEMENT,
    FakeServer,
    chat_choice,
    chat_completion,
    done,
    kind,
    make_guard,
    new_client,
    no_network,
    output_refusal,
    output_text,
    response_body,
    scanner_of,
)
from norefusal import ConfigurationError, RefusalDetected, Signal
from norefusal.integrations.openai import (
    GuardedOpenAI,
    guard,
    last_outcome,
)
from norefusal.policies import Policy
from openai import AsyncOpenAI, OpenAI

__all__ = ["kind", "no_network"]  # fixtures: sync and async twins; no network


async def chat(client: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("messages", MESSAGES)
    kwargs.setdefault("model", "gpt-4o-mini")
    return await done(client.chat.completions.create(**kwargs))


# -- chat completions -------------------------------------------------------------------------


async def test_compliance_passes_through_unchanged(kind: str) -> None:
    server = FakeServer().add(json=chat_completion(chat_choice(ANSWER)))
    client = new_client(server, kind, guard=make_guard("raise"))
    completion = await chat(client)
    assert completion.choices[0].message.content == ANSWER
    assert completion._request_id == "req_fake_123"
    outcome = last_outcome()
    assert outcome is not None
    assert (outcome.action, outcome.refused, outcome.attempts) == ("pass", False, 1)
    assert outcome.response is completion
    assert scanner_of(client).scanned == [ANSWER]


async def test_prompt_is_role_tagged_from_messages(kind: str) -> None:
    server = FakeServer().add(json=chat_completion(chat_choice(ANSWER)))
    client = new_client(server, kind, guard=make_guard())
    messages = [
        {"role": "developer", "content": "Be terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Hi"},
                {"type": "image_url", "image_url": {"url": "x"}},
            ],
        },
        {"role": "assistant", "content": "Hello."},
        {"role": "tool", "tool_call_id": "c1", "content": "a long tool result"},
        {"role": "user", "content": "Capital of France?"},
    ]
    await chat(client, messages=messages)
    assert scanner_of(client).prompts == [
        "<|system|>Be terse.<|user|>Hi<|assistant|>Hello.<|user|>Capital of France?"
    ]


async def test_refusal_raises_with_the_policy_name(kind: str) -> None:
    server = FakeServer().add(json=chat_completion(chat_choice(REFUSAL)))
    client = new_client(server, kind, guard=make_guard("raise"))
    with pytest.raises(RefusalDetected) as caught:
        await chat(client)
    assert caught.value.output == REFUSAL
    assert caught.value.policy == "test-raise"
    assert caught.value.result.signal is Signal.CLASSIFIER
    assert REFUSAL not in str(caught.value)


async def test_flag_passes_the_refusal_through_and_records_it(kind: str) -> None:
    server = FakeServer().add(json=chat_completion(chat_choice(REFUSAL)))
    client = new_client(server, kind, guard=make_guard("flag"))
    completion = await chat(client)
    assert completion.choices[0].message.content == REFUSAL
    outcome = last_outcome()
    assert outcome is not None
    assert (outcome.action, outcome.refused) == ("flag", True)
    assert client.guard.metrics.snapshot()["refusals"] == 1


async def test_n2_checks_every_choice_and_replaces_only_the_refused_one(kind: str) -> None:
    body = chat_completion(chat_choice(ANSWER, index=0), chat_choice(REFUSAL, index=1))
    server = FakeServer().add(json=body)
    client = new_client(server, kind, guard=make_guard("replace", replacement=REPLACEMENT))
    completion = await chat(client, n=2)
    assert [c.message.content for c in completion.choices] == [ANSWER, REPLACEMENT]
    outcome = last_outcome()
    assert outcome is not None
    assert outcome.action == "replace"
    assert [r.is_refusal for r in outcome.results] == [False, True]
    # The original stays available, untouched.
    assert outcome.original is not None
    assert outcome.original.choices[1].message.content == REFUSAL
    assert sorted(scanner_of(client).scanned) == sorted([ANSWER, REFUSAL])


@pytest.mark.parametrize(
    ("choice", "detail"),
    [
        (chat_choice(None, refusal=REFUSAL), "message.refusal"),
        (chat_choice("", finish_reason="content_filter"), "finish_reason=content_filter"),
    ],
)
async def test_provider_signals_decide_without_the_classifier(
    kind: str, choice: dict[str, Any], detail: str
) -> None:
    server = FakeServer().add(json=chat_completion(choice))
    client = new_client(server, kind, guard=make_guard("raise"))
    with pytest.raises(RefusalDetected) as caught:
        await chat(client)
    assert caught.value.result.signal is Signal.PROVIDER
    assert caught.value.result.detail == detail
    assert scanner_of(client).scanned == []


async def test_tool_call_only_response_is_not_a_refusal(kind: str) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    server = FakeServer().add(
        json=chat_completion(chat_choice(None, tool_calls=[call], finish_reason="tool_calls"))
    )
    client = new_client(server, kind, guard=make_guard("raise"))
    completion = await chat(client)
    assert completion.choices[0].message.tool_calls[0].function.name == "get_weather"
    outcome = last_outcome()
    assert outcome is not None
    assert not outcome.refused
    assert scanner_of(client).scanned == []


async def test_empty_choices_pass_through(kind: str) -> None:
    server = FakeServer().add(json=chat_completion())
    client = new_client(server, kind, guard=make_guard("raise"))
    completion = await chat(client)
    assert completion.choices == []
    assert scanner_of(client).scanned == []


async def test_five_megabyte_completion_is_scanned_once(kind: str) -> None:
    big = "Paris is lovely in spring. " * 200_000
    server = FakeServer().add(json=chat_completion(chat_choice(big)))
    client = new_client(server, kind, guard=make_guard("raise"))
    completion = await chat(client)
    assert len(completion.choices[0].message.content) > 5_000_000
    assert len(scanner_of(client).scanned) == 1


class Verdict(pydantic.BaseModel):
    city: str


async def test_parse_structured_output_refusal(kind: str) -> None:
    server = FakeServer().add(json=chat_completion(chat_choice(None, refusal=REFUSAL)))
    client = new_client(server, kind, guard=make_guard("raise"))
    with pytest.raises(RefusalDetected) as caught:
        await done(
            client.chat.completions.parse(
                model="gpt-4o-mini", messages=MESSAGES, response_format=Verdict
            )
        )
    assert caught.value.result.detail == "message.refusal"


async def test_parse_structured_output_answer_and_replace(kind: str) -> None:
    server = FakeServer()
    server.add(json=chat_completion(chat_choice('{"city": "Paris"}')))
    server.add(json=chat_completion(chat_choice(None, refusal=REFUSAL)))
    client = new_client(server, kind, guard=make_guard("replace", replacement=REPLACEMENT))
    parsed = await done(
        client.chat.completions.parse(
            model="gpt-4o-mini", messages=MESSAGES, response_format=Verdict
        )
    )
    assert parsed.choices[0].message.parsed == Verdict(city="Paris")
    replaced = await done(
        client.chat.completions.parse(
            model="gpt-4o-mini", messages=MESSAGES, response_format=Verdict
        )
    )
    # Structured output: the replacement goes where the API puts refusals.
    message = replaced.choices[0].message
    assert (message.refusal, message.content, message.parsed) == (REPLACEMENT, None, None)


async def test_retry_reissues_the_request_with_the_instruction(kind: str) -> None:
    server = FakeServer()
    server.add(json=chat_completion(chat_choice(REFUSAL)))
    server.add(json=chat_completion(chat_choice(ANSWER)))
    policy = {"retries": 1, "retry_instruction": "Answer the question.", "final_action": "raise"}
    client = new_client(server, kind, guard=make_guard("retry", **policy))
    completion = await chat(client, temperature=0.2)
    assert completion.choices[0].message.content == ANSWER
    first, second = server.requests
    assert second["messages"] == [
        *first["messages"],
        {"role": "system", "content": "Answer the question."},
    ]
    assert (second["model"], second["temperature"]) == (first["model"], first["temperature"])
    outcome = last_outcome()
    assert outcome is not None
    assert (outcome.action, outcome.attempts) == ("retry", 2)


async def test_retry_exhausted_applies_the_final_action(kind: str) -> None:
    server = FakeServer()
    server.add(json=chat_completion(chat_choice(REFUSAL)))
    server.add(json=chat_completion(chat_choice(REFUSAL)))
    client = new_client(server, kind, guard=make_guard("retry", retries=1, final_action="raise"))
    with pytest.raises(RefusalDetected):
        await chat(client)
    assert len(server.requests) == 2


async def test_fallback_reissues_with_the_fallback_model(kind: str) -> None:
    server = FakeServer()
    server.add(json=chat_completion(chat_choice(REFUSAL)))
    server.add(json=chat_completion(chat_choice(ANSWER), model="gpt-4o"))
    client = new_client(server, kind, guard=make_guard("fallback", fallback_model="gpt-4o"))
    completion = await chat(client)
    assert completion.model == "gpt-4o"
    assert [r["model"] for r in server.requests] == ["gpt-4o-mini", "gpt-4o"]
    assert server.requests[0]["messages"] == server.requests[1]["messages"]


# -- responses API ----------------------------------------------------------------------------


async def test_responses_refusal_item_is_a_provider_signal(kind: str) -> None:
    server = FakeServer().add(json=response_body(output_refusal(REFUSAL)))
    client = new_client(server, kind, guard=make_guard("raise"))
    with pytest.raises(RefusalDetected) as caught:
        await done(client.responses.create(model="gpt-4o", input="Tell me a secret."))
    assert caught.value.result.signal is Signal.PROVIDER
    assert caught.value.result.detail == "refusal content item"
    assert scanner_of(client).scanned == []


async def test_responses_content_filter_incompletion(kind: str) -> None:
    server = FakeServer().add(
        json=response_body(status="incomplete", incomplete_reason="content_filter")
    )
    client = new_client(server, kind, guard=make_guard("raise"))
    with pytest.raises(RefusalDetected) as caught:
        await done(client.responses.create(model="gpt-4o", input="Hi"))
    assert caught.value.result.detail == "incomplete_details.reason=content_filter"


async def test_responses_answer_and_prompt_from_instructions_and_input(kind: str) -> None:
    server = FakeServer().add(json=response_body(output_text(ANSWER)))
    client = new_client(server, kind, guard=make_guard("raise"))
    response = await done(
        client.responses.create(
            model="gpt-4o",
            instructions="Be terse.",
            input=[{"role": "user", "content": [{"type": "input_text", "text": "Capital?"}]}],
        )
    )
    assert response.output_text == ANSWER
    assert scanner_of(client).prompts == ["<|system|>Be terse.<|user|>Capital?"]
    assert scanner_of(client).scanned == [ANSWER]


async def test_responses_replace_keeps_the_message_id(kind: str) -> None:
    server = FakeServer().add(json=response_body(output_text(REFUSAL)))
    client = new_client(server, kind, guard=make_guard("replace", replacement=REPLACEMENT))
    response = await done(client.responses.create(model="gpt-4o", input="Hi"))
    assert response.output_text == REPLACEMENT
    assert response.output[0].id.startswith("msg_67cc")


async def test_responses_retry_appends_to_instructions(kind: str) -> None:
    server = FakeServer()
    server.add(json=response_body(output_refusal(REFUSAL)))
    server.add(json=response_body(output_text(ANSWER)))
    client = new_client(
        server,
        kind,
        guard=make_guard(
            "retry", retries=1, retry_instruction="Please answer.", final_action="raise"
        ),
    )
    response = await done(
        client.responses.create(model="gpt-4o", instructions="Be terse.", input="Hi")
    )
    assert response.output_text == ANSWER
    assert server.requests[1]["instructions"] == "Be terse.\n\nPlease answer."


# -- raw responses ----------------------------------------------------------------------------


async def test_raw_response_is_scanned_and_returned_raw(kind: str) -> None:
    server = FakeServer().add(json=chat_completion(chat_choice(ANSWER)))
    client = new_client(server, kind, guard=make_guard("raise"))
    raw = await done(
        client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    )
    assert raw.headers["x-request-id"] == "req_fake_123"
    assert raw.parse().choices[0].message.content == ANSWER
    assert scanner_of(client).scanned == [ANSWER]


async def test_raw_response_refusal_raises(kind: str) -> None:
    server = FakeServer().add(json=response_body(output_refusal(REFUSAL)))
    client = new_client(server, kind, guard=make_guard("raise"))
    with pytest.raises(RefusalDetected):
        await done(client.responses.with_raw_response.create(model="gpt-4o", input="Hi"))


async def test_raw_response_replace_keeps_headers(kind: str) -> None:
    server = FakeServer().add(json=chat_completion(chat_choice(REFUSAL)))
    client = new_client(server, kind, guard=make_guard("replace", replacement=REPLACEMENT))
    raw = await done(
        client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    )
    assert raw.status_code == 200
    assert raw.headers["x-request-id"] == "req_fake_123"
    assert raw.parse().choices[0].message.content == REPLACEMENT


async def test_raw_parse_helper_is_covered(kind: str) -> None:
    server = FakeServer().add(json=chat_completion(chat_choice(None, refusal=REFUSAL)))
    client = new_client(server, kind, guard=make_guard("raise"))
    with pytest.raises(RefusalDetected):
        await done(
            client.chat.completions.with_raw_response.parse(
                model="gpt-4o-mini", messages=MESSAGES, response_format=Verdict
            )
        )


# -- errors pass through untouched ------------------------------------------------------------


async def test_http_500_passes_through(kind: str) -> None:
    server = FakeServer().add(status=500, json={"error": {"message": "boom", "type": "server"}})
    client = new_client(server, kind, guard=make_guard("raise"))
    with pytest.raises(openai.InternalServerError):
        await chat(client)
    assert scanner_of(client).scanned == []


async def test_timeout_passes_through(kind: str) -> None:
    server = FakeServer().add(error=httpx2.ReadTimeout("timed out"))
    client = new_client(server, kind, guard=make_guard("raise"))
    with pytest.raises(openai.APITimeoutError):
        await chat(client)


async def test_a_retry_that_fails_raises_the_clients_error(kind: str) -> None:
    server = FakeServer()
    server.add(json=chat_completion(chat_choice(REFUSAL)))
    server.add(status=500, json={"error": {"message": "boom"}})
    client = new_client(server, kind, guard=make_guard("retry", retries=1, final_action="flag"))
    with pytest.raises(openai.InternalServerError):
        await chat(client)


async def test_malformed_json_passes_through(kind: str) -> None:
    server = FakeServer().add(raw=b'{"id": "x", "choices": [')
    client = new_client(server, kind, guard=make_guard("raise"))
    with pytest.raises(json.JSONDecodeError):
        await chat(client)


async def test_other_endpoints_are_not_guarded(kind: str) -> None:
    server = FakeServer().add(
        json={
            "object": "list",
            "model": "text-embedding-3-small",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
    )
    client = new_client(server, kind, guard=make_guard("raise"))
    result = await done(
        client.embeddings.create(model="text-embedding-3-small", input="I'm sorry, I can't.")
    )
    assert result.data[0].embedding == [0.1, 0.2]
    assert scanner_of(client).scanned == []


# -- the client classes -----------------------------------------------------------------------


async def test_subclass_copy_and_with_options_keep_the_guard(kind: str) -> None:
    server = FakeServer().add(json=chat_completion(chat_choice(REFUSAL)))
    client = new_client(server, kind, guard=make_guard("raise"))
    assert isinstance(client, OpenAI if kind == "sync" else AsyncOpenAI)
    for other in (client.with_options(timeout=5.0), client.copy(max_retries=0)):
        assert type(other) is type(client)
        assert other.guard is client.guard
    with pytest.raises(RefusalDetected):
        await chat(client.with_options(timeout=5.0))


async def test_guard_wraps_an_existing_client_without_changing_it(kind: str) -> None:
    server = FakeServer()
    server.add(json=chat_completion(chat_choice(REFUSAL)))
    server.add(json=chat_completion(chat_choice(REFUSAL)))
    plain = server.client(OpenAI if kind == "sync" else AsyncOpenAI)
    assert plain.chat.completions is not None  # resources built before guarding are not reused
    guarded = guard(plain, guard=make_guard("raise"))
    assert guarded.chat.completions._client is guarded
    assert isinstance(guarded, type(plain))
    assert guarded is not plain
    assert guarded.base_url == plain.base_url
    assert guarded.api_key == plain.api_key
    with pytest.raises(RefusalDetected):
        await chat(guarded)
    # The original client is untouched: no guard, refusals come back as they are.
    completion = await chat(plain)
    assert completion.choices[0].message.content == REFUSAL
    assert not hasattr(plain, "guard")
    # Guarding a guarded client replaces its guard rather than stacking a second one.
    regarded = guard(guarded, policy=Policy.model_validate({"name": "other"}))
    assert type(regarded) is type(guarded)
    assert regarded.guard.policy.name == "other"


def test_guard_rejects_what_is_not_a_client() -> None:
    with pytest.raises(TypeError, match="OpenAI"):
        guard(object())  # type: ignore[type-var]


def test_options_are_validated() -> None:
    server = FakeServer()
    with pytest.raises(ConfigurationError, match="either policy= or guard="):
        server.client(GuardedOpenAI, policy="strict", guard=make_guard())
    with pytest.raises(ConfigurationError, match="stream_holdback"):
        server.client(GuardedOpenAI, stream_holdback=-1)


def test_the_network_is_out_of_reach() -> None:
    with httpx2.Client() as http, pytest.raises(AssertionError, match="network"):
        http.get("http://example.com/")


async def test_malformed_choice_under_flag_passes_through_without_our_own_error(kind: str) -> None:
    body = chat_completion({"index": 0, "finish_reason": "stop"}, chat_choice(ANSWER, index=1))
    body["choices"][0]["message"] = {"role": "assistant", "content": ["not", "a", "string"]}
    server = FakeServer().add(json=body)
    client = new_client(server, kind, guard=make_guard("flag"))
    completion = await chat(client, n=2)
    assert completion.choices[1].message.content == ANSWER
    assert scanner_of(client).scanned == [ANSWER]


async def test_responses_tool_call_only_is_not_a_refusal(kind: str) -> None:
    call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
        "status": "completed",
    }
    server = FakeServer().add(json=response_body(extra_output=[call]))
    client = new_client(server, kind, guard=make_guard("raise"))
    response = await done(client.responses.create(model="gpt-4o", input="Weather?"))
    assert response.output[0].name == "get_weather"
    assert scanner_of(client).scanned == []


async def test_responses_parse_refusal(kind: str) -> None:
    server = FakeServer().add(json=response_body(output_refusal(REFUSAL)))
    client = new_client(server, kind, guard=make_guard("raise"))
    with pytest.raises(RefusalDetected) as caught:
        await done(client.responses.parse(model="gpt-4o", input="Hi", text_format=Verdict))
    assert caught.value.result.signal is Signal.PROVIDER


async def test_builtin_policy_by_name(kind: str) -> None:
    client = new_client(FakeServer(), kind, policy="strict")
    assert client.guard.policy.name == "strict"
    assert client.with_options(timeout=1.0).guard is client.guard


async def test_guard_on_azure_client_keeps_its_class_and_routes(kind: str) -> None:
    server = FakeServer().add(json=chat_completion(chat_choice(REFUSAL)))
    cls = openai.AzureOpenAI if kind == "sync" else openai.AsyncAzureOpenAI
    http = server.sync_http() if kind == "sync" else server.async_http()
    azure = cls(
        api_key="k",
        api_version="2024-10-21",
        azure_endpoint="http://testserver",
        http_client=http,
        max_retries=0,
    )
    guarded = guard(azure, guard=make_guard("raise"))
    assert isinstance(guarded, cls)
    assert type(guarded.with_options(timeout=2.0)) is type(guarded)
    with pytest.raises(RefusalDetected):
        await chat(guarded, model="my-deployment")
    assert server.requests[0]["path"] == "/openai/deployments/my-deployment/chat/completions"


def test_public_surface() -> None:
    import norefusal.integrations.openai as module

    assert sorted(module.__all__) == [
        "DEFAULT_STREAM_HOLDBACK",
        "GuardedAsyncOpenAI",
        "GuardedAsyncStream",
        "GuardedOpenAI",
        "GuardedStream",
        "guard",
        "last_outcome",
    ]
    for name in module.__all__:
        assert getattr(module, name) is not None
