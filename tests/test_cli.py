"""The ``norefusal`` command line: scan, presets, and what every subcommand shares.

One error wording and one rule for the same fault in every command, usage errors that print the
subcommand's usage, one line of help per subcommand and option, missing extras in one line,
progress on a terminal only.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import sys
from pathlib import Path

import pytest
from norefusal import _cli
from norefusal._cli import COMMANDS, main
from norefusal._cli_common import progress

REFUSAL = "I'm sorry, but I can't help with that."


def test_scan_one_output_prints_the_result_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--model", "keyword", "--prompt", "q", "--output", REFUSAL]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["is_refusal"] is True
    assert result["valid"] is False
    assert result["model"] == "keyword"
    assert "sanitized" not in result  # the text is not echoed back


def test_scan_needs_an_output_or_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--model", "keyword"]) == 2
    assert "--output" in capsys.readouterr().err


def test_scan_file_writes_one_result_per_row_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"id": "a", "prompt": "Capital of France?", "response": "Paris."},
        {"messages": [{"role": "user", "content": "Pick a lock"},
                      {"role": "assistant", "content": REFUSAL}]},
        {"id": "c", "response": "   "},
    ]  # fmt: skip
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    assert main(["scan", str(path), "--model", "keyword"]) == 0
    captured = capsys.readouterr()
    results = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["id"] for r in results] == ["a", 2, "c"]  # a row without id gets its line number
    assert [r["is_refusal"] for r in results] == [False, True, False]
    assert results[2]["signal"] == "empty"
    assert "scanned 3 rows: 1 refusals (33.3%)" in captured.err


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": "p"', "line 2: invalid JSON"),
        ('["p", "r"]', "line 2: a row must be a JSON object"),
        ('{"prompt": "p"}', "line 2: a row needs 'response'"),
        ('{"response": 3}', "line 2: 'response' and 'prompt' must be strings"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', "line 2: bad 'messages'"),
    ],
)
def test_a_bad_row_names_its_line_and_nothing_is_written(
    line: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"response": "fine"}\n' + line + "\n", encoding="utf-8")
    out = tmp_path / "results.jsonl"
    assert main(["scan", str(path), "--model", "keyword", "--out", str(out)]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()
    assert list(tmp_path.glob("*.part")) == []


def test_scan_file_to_out_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"response": REFUSAL}) + "\n", encoding="utf-8")
    out = tmp_path / "results.jsonl"
    assert main(["scan", str(path), "--model", "keyword", "--out", str(out)]) == 0
    (line,) = out.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["is_refusal"] is True


def test_an_unknown_preset_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--model", "keywrd", "--output", "x"]) == 1
    assert "Did you mean 'keyword'?" in capsys.readouterr().err


def test_presets_lists_every_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["default", "protectai", "agentlans", "keyword", "norefusal-light"]


# -- one wording, one rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "Cannot read {path}: No such file or directory."),
        ("", "{path} holds no rows (one JSON object per line)."),
        ("\n  \n", "{path} holds no rows (one JSON object per line)."),
        (b'{"response": "fine", "label": "compliance"}\n\xff\n', "{path}, line 2: not UTF-8 text."),
        ('{"response": "x", "label": "refusal"\n', "{path}, line 1: invalid JSON"),
        ("[1]\n", "{path}, line 1: a row must be a JSON object."),
    ],
    ids=["missing", "empty", "blank", "not-utf8", "invalid-json", "not-an-object"],
)
@pytest.mark.parametrize("command", ["scan", "eval"])
def test_the_same_input_fault_reads_the_same_in_every_command(
    command: str,
    content: str | bytes | None,
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "rows.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    assert main([command, str(path), "--model", "keyword"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"norefusal {command}: error: {expected.format(path=path)}")
    assert len(captured.err.splitlines()) == 1
    assert captured.out == ""


def test_a_missing_policy_file_reads_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "missing.yaml"
    assert main(["policy", "validate", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"norefusal policy: error: Cannot read {path}: No such file or directory.\n"
    )


def test_a_bom_is_not_a_fault(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"response": REFUSAL}).encode() + b"\n")
    assert main(["scan", str(path), "--model", "keyword"]) == 0
    assert json.loads(capsys.readouterr().out)["is_refusal"] is True


# -- usage -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["FILE", "--output", "x"], "give FILE or --output, not both."),
        (["FILE", "--prompt", "p"], "--prompt goes with --output; the rows of FILE carry their"),
        (["--output", "x", "--out", "r.jsonl"], "--out goes with FILE, not with --output."),
        (["--output", "x", "--batch-size", "4"], "--batch-size goes with FILE, not with --output."),
        (["FILE", "--batch-size", "0"], "--batch-size must be at least 1."),
    ],
)
def test_conflicting_scan_options_are_usage_errors(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"response": REFUSAL}) + "\n", encoding="utf-8")
    argv = [str(path) if a == "FILE" else a for a in argv]
    assert main(["scan", *argv, "--model", "keyword"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("usage: norefusal scan")
    assert f"\nnorefusal scan: error: {message}" in captured.err
    assert captured.out == ""


#: Arguments each command accepts, so that the mistyped option is the only fault.
_VALID_ARGS = {
    "scan": ["--output", "x"],
    "eval": ["rows.jsonl"],
    "policy": ["schema"],
    "presets": [],
    "bench": [],
    "export": ["hf-dir", "out-dir"],
    "train": ["--data", "data", "--out", "out"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_mistyped_option_prints_the_subcommands_usage(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, *_VALID_ARGS.get(command, []), "--outptu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: norefusal {command}")
    if command in _VALID_ARGS:
        assert err.endswith(f"norefusal {command}: error: unrecognized arguments: --outptu\n")


def test_a_mistyped_command_suggests_the_right_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scna", "--output", "x"]) == 2
    assert "unknown command 'scna'. Did you mean 'scan'?" in capsys.readouterr().err
    assert main([]) == 2
    assert "usage: norefusal" in capsys.readouterr().err


# -- help --------------------------------------------------------------------------------------


def _undocumented(text: str) -> list[str]:
    """Arguments listed in argparse help with no help text (on their line or the next)."""
    lines = text.splitlines()
    missing = []
    for i, line in enumerate(lines):
        if not re.match(r"^  \S", line):  # an argument or subcommand (help text is indented more)
            continue
        on_its_line = re.search(r"\S\s{2,}\S", line.strip())
        on_the_next = i + 1 < len(lines) and re.match(r"^ {4,}\S", lines[i + 1])
        if not on_its_line and not on_the_next:
            missing.append(line.strip())
    return missing


def test_top_level_help_gives_each_command_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for name, command in COMMANDS.items():
        assert re.search(rf"^    {name} +{re.escape(command.help)}$", text, re.M), name
    assert "see `norefusal" not in text
    assert _undocumented(text) == []


@pytest.mark.parametrize(
    "argv",
    [[name] for name in COMMANDS]
    + [["policy", "validate"], ["policy", "show"], ["policy", "schema"]],
    ids=lambda argv: " ".join(argv),
)
def test_every_subcommand_and_option_has_help(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert main([*argv, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: norefusal {' '.join(argv)}")
    assert _undocumented(text) == []


def test_the_readme_lists_every_command() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Command line", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    listed = {line.split()[1] for line in block.splitlines() if line.startswith("norefusal ")}
    assert listed == set(COMMANDS)
    assert "norefusal policy show" in block


# -- missing extras ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "argv", "extra"),
    [
        ("export", ["hf-dir", "out-dir"], "onnx"),
        ("train", ["--data", "data", "--out", "out"], "train"),
    ],
)
def test_a_missing_extra_is_one_line(
    command: str,
    argv: list[str],
    extra: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    assert main([command, *argv]) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        f"norefusal {command}: error: `norefusal {command}` needs the '{extra}' extra: install it "
        f'in a clone of norefusal with `pip install -c constraints.txt ".[{extra}]"` (once '
        f'published: `pip install "norefusal[{extra}]"`). (Not installed: torch.)\n'
    )
    assert list(tmp_path.iterdir()) == []  # it stopped before doing anything
    assert main([command, "--help"]) == 0  # help needs no extra


def test_a_module_found_missing_while_running_is_one_line_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The up-front check misses a module (an extra grown since): the run still ends in one line.
    monkeypatch.setitem(COMMANDS, "export", dataclasses.replace(COMMANDS["export"], needs=()))
    monkeypatch.setitem(sys.modules, "transformers", None)
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert main(["export", str(tmp_path), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("norefusal export: error: Exporting to ONNX needs the 'onnx' extra")
    assert len(err.splitlines()) == 1


def test_a_missing_module_of_our_own_is_a_bug_with_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        COMMANDS, "export", dataclasses.replace(COMMANDS["export"], entry="norefusal._nope:main")
    )
    with pytest.raises(ModuleNotFoundError):
        main(["export", "a", "b"])


# -- policy ------------------------------------------------------------------------------------


def test_policy_validate_takes_a_built_in_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "validate", "monitor", "strict"]) == 0
    out = capsys.readouterr().out
    assert "monitor: ok (built-in policy 'monitor', action flag)" in out
    assert "strict: ok (built-in policy 'strict', action raise)" in out


def test_a_file_named_like_a_built_in_is_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("monitor").write_text("name: mine\naction: raise\n", encoding="utf-8")
    assert main(["policy", "validate", "monitor"]) == 0
    assert "monitor: ok (policy 'mine', action raise)" in capsys.readouterr().out


# -- progress ----------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tqdm")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress(10, desc="scanning") as update:
        update(4)
        update(6)
    assert re.search(r"scanning: +0%.*0/10", terminal.getvalue())  # drawn, then cleared
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    with progress(10, desc="scanning") as update:
        update(10)
    assert piped.getvalue() == ""


def test_progress_without_tqdm_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    with progress(3, desc="scanning") as update:
        update(3)
    assert terminal.getvalue() == ""


@pytest.mark.parametrize("command", ["scan", "eval"])
def test_scan_and_eval_show_progress_on_a_terminal(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tqdm")
    path = tmp_path / "rows.jsonl"
    rows = [
        {"response": REFUSAL, "label": "refusal"},
        {"response": "Paris.", "label": "compliance"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main([command, str(path), "--model", "keyword"]) == 0
    assert re.search(r"(scanning|scoring): .*/2 ", terminal.getvalue())
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    assert main([command, str(path), "--model", "keyword"]) == 0
    assert "/2 " not in piped.getvalue()


def test_progress_is_never_drawn_by_library_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    from norefusal import NoRefusalScanner

    NoRefusalScanner(model="keyword").scan_batch([("q", REFUSAL)] * 100)
    assert terminal.getvalue() == ""
    assert _cli.__name__ == "norefusal._cli"
