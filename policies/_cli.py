"""``norefusal policy``: print the policy JSON Schema, validate policy files, show built-ins."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ._loading import BUILTIN_POLICIES, PolicyError
from ._model import Policy

__all__ = ["main", "schema_text"]


def schema_text() -> str:
    """The published JSON Schema of :class:`Policy`, as written to ``policies/schema.json``."""
    return json.dumps(Policy.model_json_schema(), indent=2, ensure_ascii=False) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="norefusal policy", description="Work with norefusal policy files."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser(
        "schema",
        help="print the JSON Schema of a policy file (for editors)",
        description="Print the JSON Schema of a policy file, for editors and CI.",
    )
    validate = sub.add_parser(
        "validate",
        help="check policy files; errors name the field and the line",
        description="Check policy files; errors name the field and the line.",
    )
    validate.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help=f"a .yaml, .yml or .json file, or a built-in's name ({', '.join(BUILTIN_POLICIES)})",
    )
    show = sub.add_parser(
        "show",
        help="print a built-in policy (as YAML you can copy)",
        description="Print a built-in policy as YAML, to copy and edit.",
    )
    show.add_argument(
        "name", choices=BUILTIN_POLICIES, metavar="NAME", help=", ".join(BUILTIN_POLICIES)
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """Run ``norefusal policy ...``; returns 0 when all is well, 1 on an invalid file, 2 on usage.

    Args:
        argv: the arguments after ``policy``, e.g. ``["validate", "my-policy.yaml"]``.
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and on usage errors (2)
        return int(exc.code) if isinstance(exc.code, int) else 2
    if args.command == "schema":
        sys.stdout.write(schema_text())
        return 0
    if args.command == "show":
        from importlib import resources

        path = resources.files(__package__).joinpath(f"{args.name}.yaml")
        sys.stdout.write(path.read_text(encoding="utf-8"))
        return 0
    status = 0
    for file in args.files:
        try:
            # A built-in's name means the built-in, unless a file of that name is there.
            if file in BUILTIN_POLICIES and not Path(file).exists():
                policy, what = Policy.builtin(file), "built-in policy"
            else:
                policy, what = Policy.from_file(file), "policy"
        except PolicyError as exc:
            print(f"norefusal policy: error: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{file}: ok ({what} {policy.name!r}, action {policy.action.value})")
    return status
