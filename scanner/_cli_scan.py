"""``norefusal scan`` (one output, or every row of a JSON Lines file) and ``norefusal presets``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ._cli_common import AtomicOutput, add_scanner_options, progress, scanner_from_args
from ._jsonl import read_pairs
from ._presets import PRESETS

__all__ = ["main", "presets_main"]

_BATCH_SIZE = 32


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="norefusal scan",
        description="Scan one LLM output (--output), or every row of a JSON Lines file (FILE). "
        "Results are JSON: one object, or one line per row.",
    )
    parser.add_argument(
        "file",
        nargs="?",
        type=Path,
        metavar="FILE",
        help="JSON Lines rows with prompt/response, or OpenAI-style messages (instead of --output)",
    )
    parser.add_argument(
        "--output", default=None, metavar="TEXT", help="the LLM output to scan (instead of FILE)"
    )
    parser.add_argument(
        "--prompt", default=None, metavar="TEXT", help="with --output: the prompt it answered"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="with FILE: write the results here, whole or not at all (default: stdout)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="N",
        help=f"with FILE: rows scanned per call (default: {_BATCH_SIZE})",
    )
    add_scanner_options(parser)
    return parser


def main(argv: Sequence[str]) -> int:
    """Run ``norefusal scan``; returns the exit status (0 ok; errors raise for the dispatcher)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.file is None:
        if args.output is None:
            parser.error("give --output TEXT, or a FILE of rows.")
        for name, value in (("--out", args.out), ("--batch-size", args.batch_size)):
            if value is not None:
                parser.error(f"{name} goes with FILE, not with --output.")
        result = scanner_from_args(args).scan(args.prompt or "", args.output)
        print(json.dumps(result.to_dict()))
        return 0
    if args.output is not None:
        parser.error("give FILE or --output, not both.")
    if args.prompt is not None:
        parser.error("--prompt goes with --output; the rows of FILE carry their own prompts.")
    batch_size = _BATCH_SIZE if args.batch_size is None else args.batch_size
    if batch_size < 1:
        parser.error("--batch-size must be at least 1.")
    rows = list(read_pairs(args.file))  # every row checked before a model loads or a line is out
    scanner = scanner_from_args(args)
    refusals = 0
    with AtomicOutput(args.out) as out, progress(len(rows), desc="scanning") as update:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            results = scanner.scan_batch([(prompt, output) for _, prompt, output in chunk])
            for (row_id, _, _), result in zip(chunk, results, strict=True):
                refusals += result.is_refusal
                out.write(json.dumps({"id": row_id, **result.to_dict()}) + "\n")
            update(len(chunk))
    where = f", results in {args.out}" if args.out is not None else ""
    print(
        f"scanned {len(rows)} rows: {refusals} refusals ({refusals / len(rows):.1%}){where}",
        file=sys.stderr,
    )
    return 0


def presets_main(argv: Sequence[str]) -> int:
    """Run ``norefusal presets``: one line per preset (name, backend, what it is)."""
    argparse.ArgumentParser(
        prog="norefusal presets",
        description="List the model presets that --model takes: name, backend, what it is.",
    ).parse_args(argv)
    for preset in PRESETS.values():
        print(f"{preset.name:16} {preset.backend:13} {preset.description}")
    return 0
