"""``norefusal serve``: settings from flags, environment and a file; the process and SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from norefusal import ConfigurationError
from norefusal._cli import main
from norefusal.server import ServeSettings, load_settings


def test_flags_beat_environment_beat_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("port: 9001\nthreshold: 0.7\nmax_batch: 8\nqueue_size: 5\n")
    monkeypatch.setenv("NOREFUSAL_SERVE_THRESHOLD", "0.8")
    monkeypatch.setenv("NOREFUSAL_SERVE_QUEUE_SIZE", "6")
    settings = load_settings(config, {"queue_size": 7, "host": None})
    assert (settings.port, settings.max_batch) == (9001, 8)  # from the file
    assert settings.threshold == 0.8  # the environment over the file
    assert settings.queue_size == 7  # a flag over both
    assert settings.host == "127.0.0.1"  # a flag not given leaves the default
    json_config = tmp_path / "serve.json"
    json_config.write_text(json.dumps({"model": "keyword"}))
    assert load_settings(json_config).model == "keyword"


def test_bad_settings_say_which(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    for text, match in (
        ("prot: 1\n", "prot: Extra inputs are not permitted"),
        ("threshold: 2\n", "threshold: Input should be less than 1"),
        ("tokens: abc\n", "put tokens in a token_file"),
        ("- 1\n", "must hold a mapping"),
        ("token_file: /nonexistent/tokens\n", "is not a file"),
    ):
        bad.write_text(text)
        with pytest.raises(ConfigurationError, match=match) as caught:
            load_settings(bad)
        assert "abc" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="Cannot read the config file"):
        load_settings(tmp_path / "missing.yaml")


def test_tokens_never_show_in_settings_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOREFUSAL_SERVE_TOKENS", "very-secret-token")
    settings = ServeSettings()
    assert "very-secret-token" not in repr(settings)
    assert "very-secret-token" not in settings.model_dump_json()
    assert len(settings.token_digests()) == 1


def test_serve_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    assert done.value.code == 0
    usage = capsys.readouterr().out
    for flag in ("--host", "--port", "--model", "--threshold", "--workers", "--config"):
        assert flag in usage
    assert "--token" not in usage  # a command line shows in ps


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_core_imports_neither_server_nor_client() -> None:
    code = (
        "import sys, norefusal; norefusal.NoRefusalScanner(model='keyword').scan('', 'x'); "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'httpx2', 'norefusal.server') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_process_answers_then_stops_cleanly_on_sigterm(workers: int) -> None:
    port = _free_port()
    env = {**os.environ, "NOREFUSAL_SERVE_TOKENS": "tok-1"}
    command = [sys.executable, "-m", "norefusal._cli", "serve", "--model", "keyword"]
    proc = subprocess.Popen(
        [*command, "--port", str(port), "--scan-threads", "1", "--workers", str(workers)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        with httpx2.Client(base_url=url, timeout=10) as http:
            while True:
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                assert proc.poll() is None, "norefusal serve exited at startup"
                assert time.monotonic() < deadline, "norefusal serve did not become ready"
                time.sleep(0.1)
            scanned = http.post(
                "/v1/scan",
                json={"output": "I'm sorry, but I can't help with that. SECRET-9"},
                headers={"authorization": "Bearer tok-1"},
            )
            assert scanned.json()["is_refusal"] is True
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # After its graceful shutdown uvicorn re-raises the signal it caught (recent versions), so
    # a supervisor sees why the process ended; older versions exit 0.
    assert proc.returncode in (0, -signal.SIGTERM)
    assert '"POST /v1/scan" 200' in output
    assert "Shutting down" in output
    assert "Finished server process" in output
    assert "SECRET-9" not in output
