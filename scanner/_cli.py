"""The ``norefusal`` command: scan, eval, train, export, policy, bench, presets."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ._errors import NoRefusalError
from ._jsonl import iter_objects
from ._presets import PRESETS
from ._scanner import NoRefusalScanner
from ._text import split_conversation

__all__ = ["main"]

#: Subcommands implemented elsewhere: module and the extra their imports need.
_DELEGATED: dict[str, tuple[str, str | None]] = {
    "eval": ("norefusal.evaluation", None),
    "train": ("norefusal.training", "train"),
    "export": ("norefusal.export", "onnx"),
    "policy": ("norefusal.policies._cli", None),
    "bench": ("norefusal.bench", None),
    "serve": ("norefusal.server._cli", "server"),
    "audit": ("norefusal.audit", "audit"),
}


def _scanner_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="default",
        help="preset, Hugging Face id or directory (default: %(default)s)",
    )
    parser.add_argument("--backend", choices=("onnx", "transformers", "keyword"), default=None)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--match", choices=("full", "sentence"), default="full")
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--device", default=None)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="norefusal", description="Detect when an LLM refused instead of answering."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    scan = sub.add_parser("scan", help="scan one output, or a JSON Lines file of rows")
    scan.add_argument(
        "file",
        nargs="?",
        type=Path,
        help="JSON Lines: rows with prompt/response, or OpenAI-style messages",
    )
    scan.add_argument("--prompt", default="")
    scan.add_argument("--output", default=None, help="the LLM output to scan")
    scan.add_argument(
        "--out", type=Path, default=None, help="write results here instead of standard output"
    )
    scan.add_argument("--batch-size", type=int, default=32)
    _scanner_options(scan)
    sub.add_parser("presets", help="list the model presets")
    for name, (_module, _) in _DELEGATED.items():
        sub.add_parser(name, help=f"see `norefusal {name} --help`", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failure, 2 usage)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in _DELEGATED:
        return _delegate(args_list[0], args_list[1:])
    args = _build_parser().parse_args(args_list)
    try:
        if args.command == "presets":
            for preset in PRESETS.values():
                print(f"{preset.name:16} {preset.backend:13} {preset.description}")
            return 0
        return _scan(args)
    except (NoRefusalError, ValueError, TypeError, OSError) as exc:
        print(f"norefusal: error: {exc}", file=sys.stderr)
        return 1


def _delegate(command: str, argv: list[str]) -> int:
    module_name, extra = _DELEGATED[command]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f' Install it with `pip install "norefusal[{extra}]"`.' if extra else ""
        print(f"norefusal {command}: unavailable ({exc}).{hint}", file=sys.stderr)
        return 1
    entry: Callable[[list[str]], int] = module.main
    return entry(argv)


def _scanner(args: argparse.Namespace) -> NoRefusalScanner:
    return NoRefusalScanner(
        threshold=args.threshold,
        model=args.model,
        backend=args.backend,
        match=args.match,
        max_tokens=args.max_tokens,
        device=args.device,
    )


def _scan(args: argparse.Namespace) -> int:
    if args.file is None:
        if args.output is None:
            print("norefusal scan: give --output TEXT, or a FILE.jsonl.", file=sys.stderr)
            return 2
        result = _scanner(args).scan(args.prompt, args.output)
        print(json.dumps(result.to_dict()))
        return 0
    rows = list(read_pairs(args.file))  # every row checked before any result is written
    scanner = _scanner(args)
    refusals = 0
    with _output(args.out) as out:
        for start, results in _progress(scanner, rows, args.batch_size):
            for (row_id, _, _), result in zip(
                rows[start : start + len(results)], results, strict=True
            ):
                refusals += result.is_refusal
                out.write(json.dumps({"id": row_id, **result.to_dict()}) + "\n")
    rate = refusals / len(rows) if rows else 0.0
    print(f"scanned {len(rows)} rows: {refusals} refusals ({rate:.1%})", file=sys.stderr)
    return 0


def read_pairs(path: Path) -> Iterator[tuple[Any, str, str]]:
    """Yield ``(id, prompt, output)`` from a JSON Lines file; bad rows raise naming the line."""
    for number, row in iter_objects(path):
        row_id = row.get("id", number)
        if "messages" in row:
            try:
                prompt, output = split_conversation(row["messages"])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}, line {number}: bad 'messages' ({exc}).") from None
        elif "response" in row or "output" in row:
            raw_output = row.get("response", row.get("output"))
            raw_prompt = row.get("prompt") or ""
            if not isinstance(raw_output, str) or not isinstance(raw_prompt, str):
                raise ValueError(f"{path}, line {number}: 'response' and 'prompt' must be strings.")
            prompt, output = raw_prompt, raw_output
        else:
            raise ValueError(
                f"{path}, line {number}: a row needs 'response' (and 'prompt') or 'messages'."
            )
        yield row_id, prompt or "", output


def _progress(
    scanner: NoRefusalScanner, rows: list[tuple[Any, str, str]], batch_size: int
) -> Iterator[tuple[int, list[Any]]]:
    tty = sys.stderr.isatty()
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        yield start, scanner.scan_batch([(p, o) for _, p, o in chunk])
        if tty:
            done = start + len(chunk)
            bar = "#" * (30 * done // len(rows))
            sys.stderr.write(f"\r[{bar:<30}] {done}/{len(rows)}")
            sys.stderr.flush()
    if tty and rows:
        sys.stderr.write("\n")


class _output:
    """Standard output, or a file written whole: a temporary file renamed at the end."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._tmp: IO[str] | None = None
        self._tmp_name = ""

    def __enter__(self) -> IO[str]:
        if self._path is None:
            return sys.stdout
        fd, self._tmp_name = tempfile.mkstemp(dir=self._path.parent or ".", suffix=".part")
        self._tmp = os.fdopen(fd, "w", encoding="utf-8")
        return self._tmp

    def __exit__(self, exc_type: object, *_: object) -> None:
        if self._tmp is None or self._path is None:
            return
        self._tmp.close()
        if exc_type is None:
            os.replace(self._tmp_name, self._path)
        else:
            os.unlink(self._tmp_name)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
