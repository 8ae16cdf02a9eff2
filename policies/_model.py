"""The Policy model: scanner settings and what happens on a refusal, as a strict pydantic model."""

from __future__ import annotations

import difflib
import enum
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from norefusal import PRESETS, MatchType
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    field_validator,
    model_validator,
)

from ._loading import builtin_policy, policy_from_dict, policy_from_file, policy_from_yaml
from ._regex import compile_allow_pattern

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Action", "AllowPattern", "OnError", "Policy", "ScannerSettings"]

_Float = Annotated[float, Strict()]
_Int = Annotated[int, Strict()]
_Bool = Annotated[bool, Strict()]
_Str = Annotated[str, Strict()]

#: Matches a Hugging Face id (``owner/name``).
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class Action(str, enum.Enum):
    """What a policy does when the model refused."""

    #: Pass the output through, marked as a refusal (``Outcome.refused``, the event).
    FLAG = "flag"
    #: Raise :class:`~norefusal.RefusalDetected`.
    RAISE = "raise"
    #: Return ``Policy.replacement`` instead of the refused text; the original is kept.
    REPLACE = "replace"
    #: Ask the same model again, up to ``Policy.retries`` times, then ``final_action``.
    RETRY = "retry"
    #: Ask ``Policy.fallback_model``, then ``final_action``.
    FALLBACK = "fallback"


class OnError(str, enum.Enum):
    """What a check concludes when the scanner raised or exceeded ``timeout_s``."""

    #: Fail open: the output counts as not a refusal (``Signal.ERROR``, ``valid``).
    ALLOW = "allow"
    #: Fail closed: the output is withheld (``Signal.ERROR``, ``is_refusal``).
    BLOCK = "block"


_FinalAction = Literal[Action.FLAG, Action.RAISE, Action.REPLACE]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class ScannerSettings(_Strict):
    """How the policy builds its :class:`~norefusal.NoRefusalScanner` (when none is injected)."""

    model: _Str = Field(
        default="default",
        min_length=1,
        max_length=500,
        description="A preset (default, protectai, agentlans, keyword, norefusal-light), a "
        "Hugging Face id (owner/name) or a local model directory. Accepts ${ENV_VAR}.",
    )
    backend: Literal["onnx", "transformers", "keyword"] | None = Field(
        default=None, description="The inference backend; defaults to the model's own."
    )
    threshold: _Float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Scores above it are refusals; defaults to the model's calibrated threshold.",
    )
    match: MatchType = Field(
        default=MatchType.FULL,
        description="full: one window per output; sentence: max over sentences.",
    )
    max_tokens: _Int | None = Field(
        default=None, ge=16, le=8192, description="Cap on tokens per classifier input."
    )

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value in PRESETS or _HUB_ID.match(value) or _looks_like_path(value):
            return value
        close = difflib.get_close_matches(value, list(PRESETS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown model preset {value!r}; use one of {sorted(PRESETS)}, a Hugging Face id "
            f"(owner/name) or a directory path.{hint}"
        )


def _fail(field: str, message: str) -> None:
    raise ValueError(f"{field}: {message}")


def _looks_like_path(value: str) -> bool:
    return value.startswith((".", "/", "~")) or "\\" in value or Path(value).suffix == ".onnx"


class AllowPattern(_Strict):
    """An allow-list entry given as a regular expression that must match the whole output.

    Matched by RE2, in time linear in the output: no backreferences, lookaround, possessive
    or atomic groups; ``.`` matches newlines; ``\\d``, ``\\w`` and ``\\s`` are ASCII (``\\pN``
    and ``\\pL`` match any script's digits and letters).
    """

    regex: _Str = Field(
        ...,
        min_length=1,
        max_length=2000,
        description="An RE2 regular expression matching the whole output (linear time: no "
        "backreferences, lookaround, possessive or atomic groups).",
    )
    ignore_case: _Bool = False

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        compile_allow_pattern(value)  # case folding changes neither its syntax nor its size
        return value


def _allow_kind(value: Any) -> str:
    return "pattern" if isinstance(value, (dict, AllowPattern)) else "text"


# A string is exact text, a mapping a pattern: the discriminator keeps errors to the one meant.
_AllowEntry = Annotated[
    Annotated[_Str, Field(min_length=1, max_length=2000), Tag("text")]
    | Annotated[AllowPattern, Tag("pattern")],
    Discriminator(_allow_kind),
]


class Policy(_Strict):
    """What to do when an LLM refused, and when the scanner itself fails.

    Strict: unknown keys, wrong types and out-of-range values are errors, and so is a setting
    that the chosen action would ignore (e.g. ``replacement`` with ``action: raise``).
    Load one with :meth:`from_file`, :meth:`from_yaml`, :meth:`from_dict` or :meth:`builtin`.
    """

    name: _Str = Field(
        default="custom",
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Identifies the policy in events, logs and errors.",
    )
    description: _Str = Field(default="", max_length=2000, description="Free text for humans.")
    scanner: ScannerSettings = Field(default_factory=ScannerSettings)
    action: Action = Field(default=Action.FLAG, description="What to do on a refusal.")
    replacement: _Str | None = Field(
        default=None,
        min_length=1,
        max_length=10000,
        description="The message returned instead of a refusal (replace, or a final_action of "
        "replace). Accepts ${ENV_VAR}.",
    )
    retries: _Int = Field(
        default=0,
        ge=0,
        le=10,
        description="How many times action 'retry' asks the same model again (1 when not given).",
    )
    retry_instruction: _Str | None = Field(
        default=None,
        min_length=1,
        max_length=4000,
        description="An instruction added to the conversation for each retry. Accepts ${ENV_VAR}.",
    )
    fallback_model: _Str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The model that fallback asks (after the retries, for retry). "
        "Accepts ${ENV_VAR}.",
    )
    final_action: _FinalAction = Field(
        default=Action.FLAG, description="What to do when retries and fallback also refused."
    )
    on_error: OnError = Field(
        default=OnError.ALLOW, description="When the scanner raises or exceeds timeout_s."
    )
    timeout_s: _Float = Field(
        default=5.0,
        gt=0.0,
        le=600.0,
        description="Longest a caller waits for one check, in seconds.",
    )
    sample_rate: _Float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="Fraction of outputs the classifier scans (deterministic per output text).",
    )
    allowlist: tuple[_AllowEntry, ...] = Field(
        default=(),
        max_length=200,
        description="Known guardrail block messages that are not model refusals: exact "
        "text (surrounding whitespace ignored) or {regex: ...} matching the whole output; "
        "tried on outputs of up to 4000 characters.",
    )
    log_text: _Bool = Field(
        default=False, description="Put prompt and output text in events and logs (off: never)."
    )

    @model_validator(mode="before")
    @classmethod
    def _retry_default(cls, data: Any) -> Any:
        # retries means nothing without action 'retry', where it defaults to 1.
        if isinstance(data, dict) and "retries" not in data and data.get("action") == "retry":
            return {**data, "retries": 1}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        # Each message starts with the field to fix ("field: ..."), which the loaders use to
        # point at the field and its line.
        given = self.model_fields_set
        act = self.action
        retrying = act is Action.RETRY
        chained = act in (Action.RETRY, Action.FALLBACK)
        if act is Action.FALLBACK and self.fallback_model is None:
            _fail("fallback_model", "action 'fallback' needs fallback_model, the model to ask.")
        if act is Action.REPLACE and self.replacement is None:
            _fail("replacement", "action 'replace' needs replacement, the message to return.")
        if chained and self.final_action is Action.REPLACE and self.replacement is None:
            _fail("replacement", "final_action 'replace' needs replacement, the message to return.")
        if "retries" in given and not retrying:
            _fail("retries", f"retries applies only to action 'retry', not {act.value!r}.")
        if self.retry_instruction is not None and not retrying:
            _fail(
                "retry_instruction",
                f"retry_instruction applies only to action 'retry', not {act.value!r}.",
            )
        if self.fallback_model is not None and not chained:
            _fail(
                "fallback_model",
                f"fallback_model applies only to actions 'fallback' and 'retry', "
                f"not {act.value!r}.",
            )
        if "final_action" in given and not chained:
            _fail(
                "final_action",
                f"final_action applies only to actions 'retry' and 'fallback', not {act.value!r}.",
            )
        if self.replacement is not None and not (
            act is Action.REPLACE
            or (chained and self.final_action is Action.REPLACE)
            or (self.on_error is OnError.BLOCK and self.terminal_action is not Action.RAISE)
        ):
            _fail(
                "replacement",
                "replacement is used only by action or final_action 'replace', or to withhold "
                "output under on_error 'block'; remove it or change the action.",
            )
        return self

    # -- derived -------------------------------------------------------------------------

    @property
    def terminal_action(self) -> Action:
        """The action applied when no (more) retry or fallback can help."""
        return self.final_action if self.action in (Action.RETRY, Action.FALLBACK) else self.action

    # -- loading (implemented in _loading; here so that they are Policy's own methods) ------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, env: Mapping[str, str] | None = None) -> Policy:
        """Validate a mapping, substituting ``${ENV_VAR}`` in the documented string fields.

        Raises:
            PolicyError: the data is not a valid policy; the message names each bad field.
        """
        return policy_from_dict(cls, data, env=env)

    @classmethod
    def from_yaml(
        cls, text: str, *, source: str | None = None, env: Mapping[str, str] | None = None
    ) -> Policy:
        """Parse YAML (or JSON) text with a safe loader and validate it.

        Raises:
            PolicyError: bad YAML, not a mapping, a Python tag, or an invalid field; the message
                names the field and its line.
        """
        return policy_from_yaml(cls, text, source=source, env=env)

    @classmethod
    def from_file(cls, path: str | Path, *, env: Mapping[str, str] | None = None) -> Policy:
        """Load a ``.yaml``, ``.yml`` or ``.json`` policy file.

        Raises:
            PolicyError: the file is missing or invalid; the message names the file, field and line.
        """
        return policy_from_file(cls, path, env=env)

    @classmethod
    def builtin(cls, name: str) -> Policy:
        """A policy shipped with norefusal: ``monitor``, ``strict``, ``fallback-message``,
        ``retry-then-raise``.

        Raises:
            ConfigurationError: no built-in policy has that name.
        """
        return builtin_policy(cls, name)
