"""Allow-list regular expressions, matched by RE2: time linear in the text, never backtracking.

Outputs are model-written, so an allow-list pattern meets text an attacker may have shaped.
Python's ``re`` backtracks: ``(a|a)*b`` on 40 crafted characters runs for days, in the
caller's thread, beyond any timeout, and no syntactic check catches every such shape. RE2
(``google-re2``) runs a pattern as an automaton instead, in time linear in the text; it has
no backreferences, lookaround, possessive or atomic groups, which are what need backtracking.

A pattern's automaton is bounded too (:data:`MAX_PROGRAM_SIZE` instructions, which a 2,000
character pattern of literal text just fits), so one match of a 4,000-character output costs
milliseconds at most; the engine stops trying patterns once a check's ``timeout_s`` is spent.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import re2

__all__ = ["MAX_PROGRAM_SIZE", "compile_allow_pattern"]

#: Largest compiled pattern accepted: a counted repeat such as ``(a|aa){1000}`` compiles to
#: thousands of instructions, and RE2's time per character grows with them.
MAX_PROGRAM_SIZE = 2100


@functools.lru_cache(maxsize=1024)
def compile_allow_pattern(regex: str, *, ignore_case: bool = False) -> Any:
    """Compile an allow-list pattern for ``fullmatch`` (``.`` matches newlines too).

    Raises:
        ValueError: RE2 rejects the pattern, or it compiles to more than
            :data:`MAX_PROGRAM_SIZE` instructions; the message says why and what to do.
    """
    options = re2.Options()
    options.log_errors = False  # RE2 would print its own message on stderr
    options.dot_nl = True
    options.case_sensitive = not ignore_case
    try:
        compiled = re2.compile(regex, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        hint = ""
        if _python_accepts(regex):  # valid Perl syntax that needs backtracking
            hint = (
                " Allow-list patterns are matched by RE2, in time linear in the output: it has "
                "no backreferences, lookaround, possessive (a++) or atomic ((?>...)) groups; "
                "write the pattern without them."
            )
        raise ValueError(f"not a valid RE2 regular expression ({reason}).{hint}") from None
    if compiled.programsize > MAX_PROGRAM_SIZE:
        raise ValueError(
            f"compiles to {compiled.programsize} RE2 instructions, more than "
            f"{MAX_PROGRAM_SIZE}: large counted repeats ({{1000}}) make every match slow; "
            "use * or + instead, or split the pattern into several entries."
        )
    return compiled


def _python_accepts(regex: str) -> bool:
    try:
        re.compile(regex)  # compiling never backtracks; only matching does
    except re.error:
        return False
    return True
