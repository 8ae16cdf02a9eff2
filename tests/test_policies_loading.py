"""Policy: strict validation, YAML loading, env substitution, built-ins, schema and CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from norefusal import ConfigurationError, MatchType
from norefusal.policies import (
    BUILTIN_POLICIES,
    Action,
    AllowPattern,
    OnError,
    Policy,
    PolicyError,
)
from norefusal.policies._cli import main
from pydantic import ValidationError

POLICIES_DIR = Path(__file__).resolve().parent.parent / "policies"


def fields_of(error: PolicyError) -> list[str]:
    return [p.field for p in error.problems]


# -- the model ---------------------------------------------------------------------------


def test_defaults_are_the_monitor_behaviour() -> None:
    policy = Policy()
    assert policy.action is Action.FLAG
    assert policy.on_error is OnError.ALLOW
    assert policy.sample_rate == 1.0
    assert policy.retries == 0
    assert policy.log_text is False
    assert policy.scanner.model == "default"
    assert policy.scanner.match is MatchType.FULL


def test_enums_accept_their_string_values() -> None:
    policy = Policy.from_dict(
        {"action": "retry", "final_action": "replace", "replacement": "x", "on_error": "block"}
    )
    assert policy.action is Action.RETRY
    assert policy.final_action is Action.REPLACE
    assert policy.on_error is OnError.BLOCK
    assert policy.retries == 1  # the default for retry
    assert Policy(action=Action.RAISE).terminal_action is Action.RAISE


def test_policies_are_immutable() -> None:
    policy = Policy()
    with pytest.raises(ValidationError):
        policy.action = Action.RAISE


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"colour": "red"}, "colour", "unknown field 'colour'"),
        ({"retrys": 2, "action": "retry"}, "retrys", "Did you mean 'retries'"),
        ({"scanner": {"treshold": 0.5}}, "scanner.treshold", "Did you mean 'threshold'"),
        ({"scanner": {"threshold": 1.5}}, "scanner.threshold", "less than 1"),
        ({"scanner": {"threshold": 0}}, "scanner.threshold", "greater than 0"),
        ({"scanner": {"threshold": "0.5"}}, "scanner.threshold", "valid number"),
        ({"scanner": {"model": "protectia"}}, "scanner.model", "Did you mean 'protectai'"),
        ({"scanner": {"backend": "tensorflow"}}, "scanner.backend", "onnx"),
        ({"scanner": {"match": "word"}}, "scanner.match", "full"),
        ({"scanner": {"max_tokens": 4}}, "scanner.max_tokens", "16"),
        ({"action": "retry", "retries": -1}, "retries", "greater than or equal to 0"),
        ({"action": "retry", "retries": 11}, "retries", "less than or equal to 10"),
        ({"action": "retry", "retries": "2"}, "retries", "valid integer"),
        ({"action": "retry", "retries": 2.0}, "retries", "valid integer"),
        ({"action": "explode"}, "action", "'flag', 'raise', 'replace', 'retry' or 'fallback'"),
        ({"action": "retry", "final_action": "retry"}, "final_action", "'flag', 'raise'"),
        ({"on_error": "ignore"}, "on_error", "'allow' or 'block'"),
        ({"timeout_s": 0}, "timeout_s", "greater than 0"),
        ({"timeout_s": 10_000}, "timeout_s", "less than or equal to 600"),
        ({"sample_rate": 1.5}, "sample_rate", "less than or equal to 1"),
        ({"log_text": "yes"}, "log_text", "valid boolean"),
        ({"name": ""}, "name", "at least 1"),
        ({"name": "has spaces"}, "name", "pattern"),
        ({"allowlist": [5]}, "allowlist.0", "valid string"),
        ({"allowlist": [{"regex": "(open"}]}, "allowlist.0.regex", "regular expression"),
        ({"allowlist": [{"regexp": "x"}]}, "allowlist.0.regexp", "Did you mean 'regex'"),
        ({"action": "fallback"}, "fallback_model", "needs fallback_model"),
        ({"action": "replace"}, "replacement", "needs replacement"),
        ({"action": "retry", "final_action": "replace"}, "replacement", "needs replacement"),
        ({"retries": 2}, "retries", "only to action 'retry'"),
        ({"retry_instruction": "try again"}, "retry_instruction", "only to action 'retry'"),
        ({"fallback_model": "gpt-x"}, "fallback_model", "only to actions"),
        ({"final_action": "raise"}, "final_action", "only to actions"),
        ({"replacement": "x", "action": "raise"}, "replacement", "remove it"),
    ],
)
def test_bad_input_is_an_error_naming_the_field(
    data: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(data)
    assert field in fields_of(info.value)
    assert words in str(info.value)
    assert isinstance(info.value, ConfigurationError)
    assert isinstance(info.value, ValueError)


def test_settings_the_action_uses_are_accepted() -> None:
    policy = Policy.from_dict(
        {
            "name": "full",
            "scanner": {"model": "keyword", "threshold": 0.6, "match": "sentence"},
            "action": "retry",
            "retries": 3,
            "retry_instruction": "Answer directly.",
            "fallback_model": "gpt-backup",
            "final_action": "replace",
            "replacement": "Sorry.",
            "on_error": "block",
            "timeout_s": 1,
            "sample_rate": 0.25,
            "allowlist": ["Blocked.", {"regex": "blocked .*", "ignore_case": True}],
            "log_text": True,
        }
    )
    assert policy.retries == 3
    assert policy.timeout_s == 1.0
    assert policy.allowlist == ("Blocked.", AllowPattern(regex="blocked .*", ignore_case=True))


def test_scanner_model_accepts_hub_ids_and_paths() -> None:
    for model in ("ProtectAI/distilroberta-base-rejection-v1", "./models/mine", "/abs/dir"):
        assert Policy.from_dict({"scanner": {"model": model}}).scanner.model == model


def test_from_dict_rejects_a_non_mapping() -> None:
    with pytest.raises(PolicyError, match="mapping"):
        Policy.from_dict(["action", "flag"])  # type: ignore[arg-type]


# -- YAML ----------------------------------------------------------------------------------


def test_yaml_errors_name_the_field_and_the_line() -> None:
    text = "name: bad\naction: retry\nretries: -1\nscanner:\n  threshold: 1.5\ncolour: red\n"
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml(text, source="bad.yaml")
    lines = {p.field: p.line for p in info.value.problems}
    assert lines == {"retries": 3, "scanner.threshold": 5, "colour": 6}
    message = str(info.value)
    assert "bad.yaml" in message
    assert "line 5: scanner.threshold" in message


def test_cross_field_errors_point_at_a_line() -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml("name: x\naction: fallback\n")
    (problem,) = info.value.problems
    assert (problem.field, problem.line) == ("fallback_model", 2)


@pytest.mark.parametrize(
    ("text", "got"),
    [
        ("- action: flag\n", "a list"),
        ("flag\n", "a string"),
        ("42\n", "a number"),
        ("", "an empty document"),
        ("# only a comment\n", "an empty document"),
    ],
)
def test_yaml_that_is_not_a_mapping(text: str, got: str) -> None:
    with pytest.raises(PolicyError, match=f"must be a mapping.*got {got}"):
        Policy.from_yaml(text)


def test_python_tags_are_rejected_without_running_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = (
        "name: evil\n"
        "action: fallback\n"
        f'fallback_model: !!python/object/apply:os.system ["touch {marker}"]\n'
    )
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml(text)
    (problem,) = info.value.problems
    assert problem.field == "fallback_model"
    assert problem.line == 3
    assert "python/object/apply:os.system" in problem.message
    assert "not allowed" in problem.message
    assert not marker.exists()


def test_nested_python_tags_name_the_nested_field() -> None:
    text = "scanner:\n  model: !!python/name:os.getcwd ''\n"
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml(text)
    assert fields_of(info.value) == ["scanner.model"]


def test_duplicate_keys_are_errors_not_silently_overwritten() -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml("action: raise\nname: x\naction: flag\n")
    (problem,) = info.value.problems
    assert (problem.field, problem.line) == ("action", 3)
    assert "twice" in problem.message


def test_yaml_aliases_are_rejected_before_they_can_expand() -> None:
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{k}: &{k} [{', '.join([f'*{p}'] * 9)}]\n"
        for p, k in zip("abcdefg", "bcdefgh", strict=True)
    )
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml(laughs + "allowlist: [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n")
    assert "aliases are not supported" in str(info.value)
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml("name: &n x\ndescription: *n\n")
    (problem,) = info.value.problems
    assert (problem.field, problem.line) == ("description", 2)


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml("name: x\naction: [flag\n")
    assert info.value.problems[0].line is not None
    assert "not valid YAML" in str(info.value)


def test_json_is_accepted() -> None:
    policy = Policy.from_yaml(json.dumps({"name": "j", "action": "raise"}))
    assert policy.action is Action.RAISE


# -- environment variables -----------------------------------------------------------------


def test_env_vars_are_substituted_in_documented_fields() -> None:
    env = {"BACKUP": "gpt-backup", "MSG": "Try again later.", "MODEL_DIR": "./models/x"}
    policy = Policy.from_yaml(
        "action: retry\n"
        "fallback_model: ${BACKUP}\n"
        "final_action: replace\n"
        "replacement: '${MSG} (code $${NOT_A_VAR})'\n"
        "retry_instruction: ${HINT:-Answer directly.}\n"
        "scanner:\n  model: ${MODEL_DIR}\n",
        env=env,
    )
    assert policy.fallback_model == "gpt-backup"
    assert policy.replacement == "Try again later. (code ${NOT_A_VAR})"
    assert policy.retry_instruction == "Answer directly."
    assert policy.scanner.model == "./models/x"


def test_env_vars_are_not_substituted_elsewhere() -> None:
    policy = Policy.from_dict({"name": "x", "description": "${HOME}"}, env={"HOME": "/root"})
    assert policy.description == "${HOME}"
    with pytest.raises(PolicyError, match="pattern"):
        Policy.from_dict({"name": "${NAME}"}, env={"NAME": "ok"})


def test_a_missing_env_var_names_the_field_and_variable() -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml("action: fallback\nfallback_model: ${NO_SUCH_VAR}\n", env={})
    (problem,) = info.value.problems
    assert (problem.field, problem.line) == ("fallback_model", 2)
    assert "NO_SUCH_VAR" in problem.message


def test_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOREFUSAL_TEST_FALLBACK", "from-env")
    policy = Policy.from_dict(
        {"action": "fallback", "fallback_model": "${NOREFUSAL_TEST_FALLBACK}"}
    )
    assert policy.fallback_model == "from-env"


# -- files, built-ins, schema --------------------------------------------------------------


def test_from_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: mine\naction: raise\n", encoding="utf-8")
    assert Policy.from_file(path).name == "mine"
    missing = tmp_path / "missing.yaml"
    with pytest.raises(PolicyError) as info:
        Policy.from_file(missing)
    assert str(info.value) == f"Cannot read {missing}: No such file or directory."


@pytest.mark.parametrize("name", BUILTIN_POLICIES)
def test_builtin_policies_load_from_their_files(name: str) -> None:
    policy = Policy.builtin(name)
    assert policy.name == name
    assert Policy.from_file(POLICIES_DIR / f"{name}.yaml") == policy


def test_builtin_policies_do_what_their_names_say() -> None:
    assert Policy.builtin("monitor").action is Action.FLAG
    assert Policy.builtin("strict").action is Action.RAISE
    assert Policy.builtin("fallback-message").action is Action.REPLACE
    retry = Policy.builtin("retry-then-raise")
    assert (retry.action, retry.final_action) == (Action.RETRY, Action.RAISE)
    assert retry.retries >= 1


def test_unknown_builtin_suggests_a_name() -> None:
    with pytest.raises(ConfigurationError, match="Did you mean 'monitor'"):
        Policy.builtin("monitr")


def test_published_schema_is_in_sync() -> None:
    published = json.loads((POLICIES_DIR / "schema.json").read_text(encoding="utf-8"))
    assert published == Policy.model_json_schema()
    assert published["additionalProperties"] is False


# -- CLI -------------------------------------------------------------------------------------


def test_cli_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == Policy.model_json_schema()


def test_cli_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(POLICIES_DIR / f"{name}.yaml") for name in BUILTIN_POLICIES]
    assert main(["validate", *files]) == 0
    out = capsys.readouterr().out
    assert out.count(": ok") == len(files)


def test_cli_validate_names_field_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("action: raise\n", encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nscanner:\n  threshold: 1.5\n", encoding="utf-8")
    assert main(["validate", str(good), str(bad)]) == 1
    captured = capsys.readouterr()
    assert "good.yaml: ok" in captured.out
    assert str(bad) in captured.err
    assert "line 3: scanner.threshold" in captured.err


def test_cli_show_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "strict"]) == 0
    assert Policy.from_yaml(capsys.readouterr().out) == Policy.builtin("strict")
    assert main([]) == 2
    assert main(["validate"]) == 2
    assert main(["--help"]) == 0


def test_the_readme_example_is_a_valid_policy() -> None:
    readme = (POLICIES_DIR / "README.md").read_text(encoding="utf-8")
    block = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    policy = Policy.from_yaml(block, env={})
    assert policy.name == "support-bot"
    assert policy.fallback_model == "gpt-4o-mini"
    assert len(policy.allowlist) == 2
