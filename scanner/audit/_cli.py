"""``norefusal audit``: the command line of the audit engines."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._cli_common import add_scanner_options, progress
from .._errors import NoRefusalError
from ._audit import audit
from ._ray import RayOptions
from ._shapes import Shape

__all__ = ["main"]


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="norefusal audit",
        description="Score every output in a set of logs; write per-row results (Parquet), the "
        "rows that could not be read (errors.jsonl), and refusal rates with 95%% confidence "
        "intervals (summary.json, report.md).",
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="JSON Lines or Parquet files, folders, URLs"
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="this process, streaming (default), or Ray Data",
    )
    parser.add_argument(
        "--shape",
        choices=[s.value for s in Shape],
        default=None,
        help="row shape (default: the first row's)",
    )
    parser.add_argument(
        "--keep",
        type=_names,
        default=[],
        metavar="COL,...",
        help="input columns to pass through to the results",
    )
    parser.add_argument(
        "--group-by",
        type=_names,
        default=[],
        metavar="COL,...",
        help="break the refusal rate down by: model, day, any column",
    )
    parser.add_argument(
        "--timestamp",
        default=None,
        metavar="COL",
        help="the column 'day' comes from (default: timestamp, created_at, created, time or date)",
    )
    parser.add_argument(
        "--requests",
        nargs="+",
        default=[],
        metavar="FILE",
        help="OpenAI Batch API request files, to recover the prompts",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=1024,
        help="rows per scoring call and Ray actor call (default: %(default)s)",
    )
    ray = parser.add_argument_group("Ray engine")
    ray.add_argument(
        "--address", default=None, help="Ray cluster to join (default: a local Ray, or RAY_ADDRESS)"
    )
    ray.add_argument(
        "--actors",
        type=int,
        default=None,
        help="scoring actors (default: as many as the CPUs hold)",
    )
    ray.add_argument(
        "--cpus-per-actor",
        type=float,
        default=1.0,
        help="CPUs each actor reserves, fractions allowed (default: 1)",
    )
    ray.add_argument(
        "--gpus-per-actor", type=float, default=0.0, help="GPUs each actor reserves (default: 0)"
    )
    add_scanner_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``norefusal audit``; returns the exit status (0 ok, 1 failure, 2 usage)."""
    args = _parser().parse_args(argv)
    scanner = {
        "threshold": args.threshold,
        "model": args.model,
        "backend": args.backend,
        "match": args.match,
        "max_tokens": args.max_tokens,
        "device": args.device,
    }
    tty = sys.stderr.isatty()
    options = RayOptions(
        address=args.address,
        actors=args.actors,
        cpus_per_actor=args.cpus_per_actor,
        gpus_per_actor=args.gpus_per_actor,
        progress_bars=tty,
    )
    try:
        # Ray Data draws its own bars; the local engine reports through the commands' helper.
        with progress(None, desc="audit") as update:
            result = audit(
                args.inputs,
                out=args.out,
                engine=args.engine,
                shape=args.shape,
                keep=args.keep,
                group_by=args.group_by,
                timestamp_field=args.timestamp,
                requests=args.requests,
                scanner=scanner,
                batch_size=args.batch_size,
                ray=options,
                progress=update if args.engine == "local" else None,
            )
    except (NoRefusalError, ValueError, TypeError, OSError) as exc:
        print(f"norefusal audit: error: {exc}", file=sys.stderr)
        return 1
    summary = result.summary
    rate = "n/a" if summary["rate"] is None else f"{summary['rate']:.2%}"
    ci = summary["ci95"]
    interval = f", 95% CI {ci[0]:.2%}-{ci[1]:.2%}" if ci else ""
    print(
        f"audited {summary['outputs']:,} outputs from {summary['files']} file(s): "
        f"{summary['refusals']:,} refusals ({rate}{interval}); {summary['errors']:,} rows "
        f"could not be read; results in {result.out}",
        file=sys.stderr,
    )
    for note in result.skipped:
        print(f"norefusal audit: skipped {note}", file=sys.stderr)
    return 0
