"""The README's install line and its two commands are what ``.ci/run`` runs, verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _commands(section: str) -> list[str]:
    """The commands of a README section's bash blocks, comments dropped."""
    body = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", body, re.S)
    lines = [line.split("  #", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line]


def test_ci_runs_the_readme_install_line_and_its_two_commands() -> None:
    ci_lines = {line.strip() for line in CI.splitlines()}
    install = _commands("Install")[:2]  # the development install; the rest are alternatives
    two = _commands("The two commands")
    assert install == [
        "python3 -m venv .venv && . .venv/bin/activate",
        'pip install -c constraints.txt -e ".[dev]"',
    ]
    assert two == [
        "norefusal scan --output \"I'm sorry, but I can't help with that.\"",
        "python -m pytest -q",
    ]
    for command in install + two:
        assert command in ci_lines, command


def test_the_readme_installs_from_the_repository() -> None:
    for command in _commands("Install"):
        assert "pip install norefusal" not in command, command  # not on PyPI yet
        assert '"norefusal[' not in command, command
