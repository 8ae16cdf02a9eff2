"""Exceptions raised by norefusal.

    NoRefusalError
    ├── ConfigurationError          misuse: bad option, unknown preset, bad policy file
    │   └── MissingDependencyError  an optional extra is not installed (names the pip command)
    ├── ModelLoadError              a model directory or file is missing, corrupt or unsafe
    ├── ScannerError                the scanner failed or timed out while scanning
    └── RefusalDetected             a policy decided that a refusal must raise

Messages never contain prompt or output text; exceptions carry them as attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._result import ScanResult

__all__ = [
    "ConfigurationError",
    "MissingDependencyError",
    "ModelLoadError",
    "NoRefusalError",
    "RefusalDetected",
    "ScannerError",
]


class NoRefusalError(Exception):
    """Base class of every error norefusal raises on purpose."""


class ConfigurationError(NoRefusalError, ValueError):
    """An option, preset or policy is invalid; the message says how to fix it."""


class MissingDependencyError(ConfigurationError, ImportError):
    """An optional extra is needed; the message names the ``pip install`` that provides it."""

    def __init__(self, what: str, extra: str) -> None:
        self.extra = extra
        # Not on PyPI yet: the command that works today comes first.
        super().__init__(
            f"{what} needs the '{extra}' extra: install it in a clone of norefusal with "
            f'`pip install -c constraints.txt ".[{extra}]"` (once published: '
            f'`pip install "norefusal[{extra}]"`).'
        )


class ModelLoadError(NoRefusalError):
    """A model could not be loaded: a file is missing, corrupt, unsafe, or its labels unknown."""


class ScannerError(NoRefusalError):
    """Scanning itself failed (the backend raised, returned garbage, or timed out)."""


class RefusalDetected(NoRefusalError):
    """The model refused and the policy says to raise.

    Attributes:
        result: the :class:`~norefusal.ScanResult` that decided.
        prompt: the prompt that was scanned.
        output: the refused output (never included in the message).
        policy: the name of the policy that decided, if any.
    """

    def __init__(
        self,
        result: ScanResult,
        *,
        prompt: str = "",
        output: str = "",
        policy: str | None = None,
    ) -> None:
        self.result = result
        self.prompt = prompt
        self.output = output
        self.policy = policy
        by = f" (policy {policy!r})" if policy else ""
        super().__init__(
            f"The model refused{by}: score {result.score:.3f} above threshold "
            f"{result.threshold:.3f}, decided by {result.signal.value}."
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_refusal, (self.result, self.prompt, self.output, self.policy))


def _rebuild_refusal(
    result: ScanResult, prompt: str, output: str, policy: str | None
) -> RefusalDetected:
    return RefusalDetected(result, prompt=prompt, output=output, policy=policy)
