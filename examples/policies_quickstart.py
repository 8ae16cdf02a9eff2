"""Policies quickstart: decide what happens when a model refuses, in a file, not in code.

Runs offline in a second: the "model" here is a stand-in function and the scanner is the
keyword preset. Swap in your real client call and ``NoRefusalScanner()`` (the default model).

    python examples/policies_quickstart.py
"""

from __future__ import annotations

from collections.abc import Sequence

from norefusal import NoRefusalScanner, RefusalDetected
from norefusal.policies import (
    Candidate,
    DecisionEvent,
    FallbackRequest,
    Guard,
    Policy,
    RetryRequest,
)

# A policy as you would keep it in policy.yaml (or load with Policy.from_file("policy.yaml")).
# Validate a file with `norefusal policy validate policy.yaml`; `norefusal policy schema` prints
# the JSON Schema for your editor.
POLICY_YAML = """
name: support-bot
action: retry                 # on a refusal: ask the same model again...
retries: 1
retry_instruction: If the request is safe, answer it directly.
fallback_model: ${FALLBACK_MODEL:-backup-model}   # ...then ask this one...
final_action: replace         # ...then show this message instead of a refusal.
replacement: Sorry, I can't help with that one. A human agent will follow up.
on_error: allow               # if the scanner fails or is slow, let the answer through
timeout_s: 2
allowlist:                    # our own gateway's block message is not a model refusal
  - "I'm sorry, but I can't help with that: blocked by the Acme gateway."
"""


def ask_model(prompt: str, *, model: str = "main-model", instruction: str | None = None) -> str:
    """Stand-in for a chat completion call."""
    if model == "main-model" and instruction is None:
        return "I'm sorry, but I can't help with that."
    if model == "main-model":
        return "I cannot assist with that request."
    return f"Here is a clear answer to: {prompt}"


def main() -> None:
    policy = Policy.from_yaml(POLICY_YAML, source="POLICY_YAML")

    def on_decision(event: DecisionEvent) -> None:
        # Structured, and free of prompt/output text unless the policy sets log_text: true.
        # Each event also goes to the `norefusal.policies` logger (INFO): configure logging to
        # keep them, e.g. logging.basicConfig(level=logging.INFO).
        print(f"  decision: {event.action:8} attempt={event.attempt} score={event.score:.2f}")

    guard = Guard(policy, scanner=NoRefusalScanner(model="keyword"), on_decision=on_decision)
    prompt = "How do I reset my password?"

    # 1. A whole response: retry, then fall back, each answer checked again.
    def candidates(text: str) -> Sequence[Candidate]:
        return [Candidate(text)]

    def call_again(request: RetryRequest) -> str:
        return ask_model(prompt, instruction=request.instruction)

    def call_fallback(request: FallbackRequest) -> str:
        return ask_model(prompt, model=request.model)

    def replace(text: str, refused: Sequence[int], message: str) -> str:
        return message

    print("1. A refusal, retried and then answered by the fallback model:")
    outcome = guard.run(
        prompt,
        ask_model(prompt),
        candidates=candidates,
        call_again=call_again,
        call_fallback=call_fallback,
        replace=replace,
    )
    print(f"  -> {outcome.action} after {outcome.attempts} attempts: {outcome.response!r}")
    if outcome.action != "fallback" or outcome.refused:
        raise SystemExit(f"unexpected outcome: {outcome.action}")

    # 2. Provider-native refusals (e.g. OpenAI's message.refusal) decide without the classifier.
    print("2. A provider refusal, checked without calling the model again:")
    result = guard.check(prompt, Candidate(None, refusal="I can't.", detail="message.refusal"))
    print(f"  -> refusal={result.is_refusal} signal={result.signal.value} detail={result.detail}")

    # 3. Streams: a monitor checks the text as it arrives; the policy decides on a verdict.
    print("3. A streamed answer:")
    monitor = guard.monitor(prompt)
    for delta in ("Sure! Open Settings, ", "choose Security, then ", "click Reset password."):
        if (verdict := monitor.feed(delta)) is not None:
            action = guard.stream_verdict(prompt, monitor.text, verdict)
            print(f"  -> stopped mid-stream: {action.kind}")
            break
    else:
        action = guard.stream_verdict(prompt, monitor.text, monitor.finish())
        print(f"  -> {action.kind}: the whole stream reached the user")

    # The guard counts what it decided, for your dashboards.
    print(f"Metrics of the {policy.name} guard after 1-3:")
    print(f"  {guard.metrics.snapshot()}")

    # 4. A strict built-in policy raises, carrying the result for your error handler.
    print("4. The built-in strict policy, on a refusal:")
    strict = Guard("strict", scanner=NoRefusalScanner(model="keyword"))
    try:
        strict.run(prompt, ask_model(prompt), candidates=candidates)
    except RefusalDetected as exc:
        print(f"  -> raised RefusalDetected (score {exc.result.score:.2f}): {exc}")
    else:
        raise SystemExit("expected RefusalDetected")


if __name__ == "__main__":
    main()
