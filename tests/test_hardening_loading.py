"""Hardening, safe loading and privacy: nothing norefusal loads can run code, a tampered model
is refused, and no prompt or output text reaches a log or an exception message by default.

The loading tests use live payloads: a pickle that would create a file when unpickled, model
code that would create a file when imported, YAML tags that would run a command. Each test
first proves its payload works when loaded unsafely, then that norefusal never runs it.
"""

from __future__ import annotations

import json
import logging
import pathlib
import pickle
import shutil
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import numpy.typing as npt
import pytest
import yaml
from _openai_fakes import BASE_URL, chat_choice, chat_completion, chat_stream, no_network, sse
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from norefusal import (
    ModelLoadError,
    NoRefusalError,
    NoRefusalScanner,
    RefusalDetected,
    ScannerError,
)
from norefusal import _presets as presets
from norefusal._artifact import CONFIG_NAME, sha256_file
from norefusal._backends import Backend
from norefusal.integrations.langchain import NoRefusalCallbackHandler, NoRefusalGuard
from norefusal.integrations.openai import GuardedOpenAI
from norefusal.policies import Candidate, Guard, Policy, PolicyError

__all__ = ["no_network"]  # autouse fixture: no test here may reach the network

REPO = Path(__file__).resolve().parents[1]
OUR_CODE = tuple(str(REPO / part) for part in ("scanner", "policies", "integrations"))


class Payload:
    """Unpickling this creates ``marker``: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (self.marker,))


def weights_dir(source: Path, target: Path, *, keep_safetensors: bool) -> Path:
    shutil.copytree(source, target)
    if not keep_safetensors:
        for path in target.glob("*.safetensors"):
            path.unlink()
    return target


# -- models: pickle, remote code, hashes ------------------------------------------------------


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "model.ckpt", "model.pkl"])
def test_a_pickle_only_checkpoint_is_refused_and_never_unpickled(
    name: str, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    probe, marker = tmp_path / "probe", tmp_path / "pwned"
    pickle.loads(pickle.dumps(Payload(probe)))
    assert probe.exists()  # the payload is live
    model = weights_dir(tiny_bert_dir, tmp_path / "model", keep_safetensors=False)
    (model / name).write_bytes(pickle.dumps(Payload(marker)))
    scanner = NoRefusalScanner(model=str(model), backend="transformers")
    with pytest.raises(ModelLoadError) as info:
        scanner.scan("q", "I can't help with that.")
    message = str(info.value)
    assert name in message
    assert "pickle" in message
    assert "safetensors" in message  # says what to do
    assert not marker.exists()


def test_a_pickle_beside_safetensors_is_ignored(tiny_bert_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    model = weights_dir(tiny_bert_dir, tmp_path / "model", keep_safetensors=True)
    (model / "pytorch_model.bin").write_bytes(pickle.dumps(Payload(marker)))
    result = NoRefusalScanner(model=str(model), backend="transformers").scan("q", "Hello.")
    assert 0.0 <= result.score <= 1.0  # loaded from the safetensors
    assert not marker.exists()


EVIL_CODE = """
import pathlib
pathlib.Path({marker!r}).touch()
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast
class EvilConfig(BertConfig):
    model_type = "bert"
class EvilModel(BertForSequenceClassification):
    config_class = EvilConfig
class EvilTokenizer(BertTokenizerFast):
    pass
"""


def test_model_code_shipped_with_a_checkpoint_never_runs(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    model = weights_dir(tiny_bert_dir, tmp_path / "model", keep_safetensors=True)
    (model / "evil.py").write_text(EVIL_CODE.format(marker=str(marker)))
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {
        "AutoConfig": "evil.EvilConfig",
        "AutoModelForSequenceClassification": "evil.EvilModel",
    }
    (model / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((model / "tokenizer_config.json").read_text())
    tokenizer_config["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
    (model / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    scanner = NoRefusalScanner(model=str(model), backend="transformers")
    try:
        result = scanner.scan("q", "Hello.")
    except ModelLoadError:
        pass  # refusing is fine too; running the code is not
    else:
        assert 0.0 <= result.score <= 1.0  # the library's own BERT class was used
    assert not marker.exists()


@pytest.fixture
def embedded_stand_in(tiny_onnx_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of an exported model installed where the embedded default model lives."""
    directory = tmp_path / "default"
    shutil.copytree(tiny_onnx_dir, directory)
    monkeypatch.setattr(presets, "DEFAULT_MODEL_DIR", directory)
    return directory


def test_the_default_preset_verifies_its_files(embedded_stand_in: Path) -> None:
    assert NoRefusalScanner().scan("q", "Hello.").model  # intact: loads
    data = bytearray((embedded_stand_in / "model.onnx").read_bytes())
    data[-100] ^= 0x01  # one bit
    (embedded_stand_in / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="SHA256") as info:
        NoRefusalScanner().scan("q", "Hello.")
    assert "model.onnx" in str(info.value)


@pytest.mark.parametrize("dropped", ["model.onnx", "tokenizer.json", "all"])
def test_the_default_preset_refuses_a_manifest_without_hashes(
    embedded_stand_in: Path, dropped: str
) -> None:
    """Without recorded hashes the check would pass vacuously: the embedded model needs them."""
    manifest = embedded_stand_in / CONFIG_NAME
    config = json.loads(manifest.read_text())
    if dropped == "all":
        del config["files"]
    else:
        del config["files"][dropped]
    manifest.write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="SHA256"):
        NoRefusalScanner().scan("q", "Hello.")


def test_the_shipped_default_model_records_and_matches_its_hashes(tmp_path: Path) -> None:
    directory = presets.DEFAULT_MODEL_DIR
    if not (directory / CONFIG_NAME).is_file():
        pytest.skip("the embedded default model is not in this checkout yet")
    files = json.loads((directory / CONFIG_NAME).read_text())["files"]
    assert {"model.onnx", "tokenizer.json"} <= set(files)
    for name, digest in files.items():
        assert sha256_file(directory / name) == digest
    copy = tmp_path / "default"
    shutil.copytree(directory, copy)
    (copy / "tokenizer.json").write_text((copy / "tokenizer.json").read_text() + " ")
    with pytest.raises(ModelLoadError, match="SHA256"):
        NoRefusalScanner(model=str(copy)).scan("q", "Hello.")


# -- policy files -----------------------------------------------------------------------------


def yaml_payloads(marker: Path) -> list[str]:
    return [
        f"name: x\naction: flag\nreplacement: !!python/object/apply:os.system ['touch {marker}']",
        "name: !!python/object/apply:pathlib.Path.touch "
        f"[!!python/object/apply:pathlib.Path ['{marker}']]",
        "name: x\naction: !!python/name:os.system",
        "name: x\nscanner: !!python/module:os",
        "name: x\nscanner:\n  model: !!python/object/new:str ['keyword']",
        "name: x\nallowlist:\n  - !!python/object:collections.OrderedDict {}",
        "!!python/object/apply:os.system ['true']",
    ]


def test_policy_yaml_cannot_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    first = yaml_payloads(marker)[0]
    yaml.unsafe_load(first.replace("name: x\naction: flag\nreplacement: ", ""))
    assert marker.exists()  # the payload is live
    marker.unlink()
    for i, text in enumerate(yaml_payloads(marker)):
        with pytest.raises(PolicyError, match="python"):
            Policy.from_yaml(text)
        path = tmp_path / f"policy{i}.yaml"
        path.write_text(text)
        with pytest.raises(PolicyError):
            Policy.from_file(path)
        with pytest.raises(PolicyError):
            Guard(Policy.from_file(path))
    assert not marker.exists()


def test_a_yaml_alias_bomb_is_refused_before_it_expands() -> None:
    bomb = "a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n"
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [*{previous},*{previous},*{previous},*{previous},*{previous}]\n"
    with pytest.raises(PolicyError, match="alias"):
        Policy.from_yaml(bomb + "name: x\n")


# -- privacy: no text in logs or messages -----------------------------------------------------

SECRET_PROMPT = "my card number is 4111-1111-1111-1111 PROMPT-CANARY"
SECRET_OUTPUT = "I'm sorry, but I can't help with that. OUTPUT-CANARY"
CANARIES = ("PROMPT-CANARY", "OUTPUT-CANARY", "4111-1111")


def leaked(text: str) -> list[str]:
    return [c for c in CANARIES if c in text]


def our_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("norefusal") or r.pathname.startswith(OUR_CODE)
    ]


def assert_no_text(caplog: pytest.LogCaptureFixture, *errors: BaseException) -> None:
    formatter = logging.Formatter()
    for record in our_records(caplog):
        shown = formatter.format(record)  # message, arguments and any traceback
        assert leaked(shown) == [], shown
        assert leaked(repr(getattr(record, "norefusal", ""))) == []
    for error in errors:
        assert leaked(str(error)) == []
        assert leaked(repr(error)) == []
        assert leaked(str(error.args)) == []


class LeakyBackend(Backend):
    """A backend whose errors quote their input, as careless ones do."""

    name = "leaky"

    def predict(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        raise ValueError(f"cannot score {texts!r}")


def test_scanner_keeps_text_out_of_messages(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    scanner = NoRefusalScanner(model="keyword")
    scanner.scan(SECRET_PROMPT, SECRET_OUTPUT)
    monitor = scanner.stream(SECRET_PROMPT)
    monitor.feed(SECRET_OUTPUT)
    monitor.finish()
    errors: list[BaseException] = []
    leaky = NoRefusalScanner(backend=LeakyBackend())
    with pytest.raises(ScannerError) as failed:
        leaky.scan(SECRET_PROMPT, SECRET_OUTPUT)
    errors.append(failed.value)
    assert leaked(str(failed.value.__cause__))  # the cause is kept for the user to inspect
    with pytest.raises(TypeError) as bad:
        scanner.scan(SECRET_PROMPT, [SECRET_OUTPUT])  # type: ignore[arg-type]
    errors.append(bad.value)
    assert_no_text(caplog, *errors)


@pytest.mark.parametrize("builtin", ["monitor", "strict", "fallback-message", "retry-then-raise"])
def test_policies_keep_text_out_of_logs_and_messages(
    builtin: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    events: list[Any] = []
    guard = Guard(builtin, scanner=NoRefusalScanner(model="keyword"), on_decision=events.append)
    errors: list[BaseException] = []
    try:
        guard.run(
            SECRET_PROMPT,
            SECRET_OUTPUT,
            candidates=lambda r: [Candidate(r)],
            call_again=lambda request: SECRET_OUTPUT,
            call_fallback=lambda request: SECRET_OUTPUT,
            replace=lambda r, indices, message: message,
        )
    except RefusalDetected as exc:
        errors.append(exc)
    for error in errors:  # carried as attributes, never shown
        assert isinstance(error, RefusalDetected)
        assert (error.prompt, error.output) == (SECRET_PROMPT, SECRET_OUTPUT)
    guard.check(SECRET_PROMPT, Candidate(SECRET_OUTPUT))
    monitor = guard.monitor(SECRET_PROMPT)
    monitor.feed(SECRET_OUTPUT)
    try:
        guard.stream_verdict(SECRET_PROMPT, SECRET_OUTPUT, monitor.finish())
    except RefusalDetected as exc:
        errors.append(exc)
    failing = Guard(
        Policy.from_dict({"name": "f", "action": "raise", "on_error": "block"}),
        scanner=NoRefusalScanner(backend=LeakyBackend()),
    )
    assert failing.check(SECRET_PROMPT, Candidate(SECRET_OUTPUT)).is_refusal
    with pytest.raises(RefusalDetected) as blocked:
        failing.run(SECRET_PROMPT, SECRET_OUTPUT, candidates=lambda r: [Candidate(r)])
    errors.append(blocked.value)
    assert [e for e in events if e.prompt is not None or e.output is not None] == []
    assert any(r.levelno == logging.WARNING for r in our_records(caplog))  # errors are logged
    assert_no_text(caplog, *errors)


def test_log_text_is_the_opt_in(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    policy = Policy.from_dict({"name": "audit", "action": "flag", "log_text": True})
    Guard(policy, scanner=NoRefusalScanner(model="keyword")).check(
        SECRET_PROMPT, Candidate(SECRET_OUTPUT)
    )
    (record,) = our_records(caplog)
    assert record.norefusal["prompt"] == SECRET_PROMPT  # type: ignore[attr-defined]
    assert leaked(record.getMessage()) == []  # even then, only the structured record holds it


def test_openai_integration_keeps_text_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def handle(request: httpx2.Request) -> httpx2.Response:
        if json.loads(request.content).get("stream"):
            body = b"".join(sse(chat_stream(SECRET_OUTPUT, size=7)))
            return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)
        return httpx2.Response(200, json=chat_completion(chat_choice(SECRET_OUTPUT)))

    errors: list[BaseException] = []
    for policy in ("monitor", "strict", "fallback-message"):
        client = GuardedOpenAI(
            api_key="sk-test",
            base_url=BASE_URL,
            max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(handle)),
            guard=Guard(policy, scanner=NoRefusalScanner(model="keyword")),
        )
        ask: Any = {"model": "m", "messages": [{"role": "user", "content": SECRET_PROMPT}]}
        for stream in (False, True):
            try:
                got = client.chat.completions.create(stream=stream, **ask)
                if stream:
                    list(got)
            except RefusalDetected as exc:
                errors.append(exc)
        client.close()
    assert len(errors) == 2
    assert all(isinstance(e, RefusalDetected) and e.output for e in errors)
    assert_no_text(caplog, *errors)


def test_langchain_integration_keeps_text_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    scanner = NoRefusalScanner(model="keyword")
    errors: list[BaseException] = []
    for policy in ("monitor", "strict", "fallback-message"):
        handler = NoRefusalCallbackHandler(guard=Guard(policy, scanner=scanner))
        model = FakeListChatModel(responses=[SECRET_OUTPUT] * 3)
        guarded = model | NoRefusalGuard(guard=Guard(policy, scanner=scanner))
        config: Any = {"callbacks": [handler]}
        for run in (
            partial(model.invoke, SECRET_PROMPT, config=config),
            partial(lambda m, c: list(m.stream(SECRET_PROMPT, config=c)), model, config),
            partial(guarded.invoke, SECRET_PROMPT),
        ):
            try:
                run()
            except NoRefusalError as exc:
                errors.append(exc)
    assert len(errors) == 3
    assert_no_text(caplog, *errors)


def test_a_refusal_error_pickles_with_its_context() -> None:
    """Exceptions cross process boundaries (multiprocessing, Celery) with their attributes."""
    result = NoRefusalScanner(model="keyword").scan(SECRET_PROMPT, SECRET_OUTPUT)
    error = RefusalDetected(result, prompt=SECRET_PROMPT, output=SECRET_OUTPUT, policy="strict")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.prompt, copy.output, copy.policy) == (SECRET_PROMPT, SECRET_OUTPUT, "strict")
    assert leaked(str(copy)) == []
