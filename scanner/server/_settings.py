"""Settings of ``norefusal serve``: one pydantic model, read from flags, environment and a file.

Precedence, highest first: command-line flags, ``NOREFUSAL_SERVE_*`` environment variables, a
config file (YAML or JSON, the same keys), the defaults below. Bearer tokens come only from
the environment (``NOREFUSAL_SERVE_TOKENS``, comma-separated) or a file
(``NOREFUSAL_SERVE_TOKEN_FILE`` or ``token_file:``, one token a line), never from a flag that
``ps`` would show.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .._errors import ConfigurationError

__all__ = ["ENV_PREFIX", "ServeSettings", "default_scan_threads", "load_settings"]

ENV_PREFIX = "NOREFUSAL_SERVE_"
_MAX_CONFIG_BYTES = 1_000_000


def default_scan_threads() -> int:
    """Scans run at once in one process: one per core, at most four.

    ONNX Runtime already spreads one scan over up to four cores; more concurrent scans than
    cores only queue inside the runtime (``python -m norefusal.server.bench`` measures it).
    """
    return max(1, min(os.cpu_count() or 1, 4))


class ServeSettings(BaseSettings):
    """Everything ``norefusal serve`` and :func:`~norefusal.server.create_app` read.

    Every field is also an environment variable: ``NOREFUSAL_SERVE_`` + the name in capitals.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, validate_default=True
    )

    # -- where and how it listens ------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="interface to bind; loopback unless told")
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(
        default=1, ge=1, le=64, description="server processes, each with its model"
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    access_log: bool = Field(default=True, description="one line per request: route, status, time")

    # -- the scanner ---------------------------------------------------------------------------
    model: str = "default"
    backend: Literal["onnx", "transformers", "keyword"] | None = None
    threshold: float | None = Field(default=None, gt=0.0, lt=1.0)
    match: Literal["full", "sentence"] = "full"
    max_tokens: int | None = Field(default=None, ge=16)

    # -- capacity -------------------------------------------------------------------------------
    scan_threads: int = Field(
        default_factory=default_scan_threads, ge=1, le=64, description="scans run at once"
    )
    queue_size: int = Field(
        default=256, ge=1, description="scans admitted (running or waiting) before new ones get 503"
    )
    scan_timeout_s: float = Field(
        default=10.0, gt=0, description="a scan's deadline; then 504 (408)"
    )
    retry_after_s: int = Field(default=1, ge=0, description="Retry-After of a 503")

    # -- limits -----------------------------------------------------------------------------------
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="larger bodies get 413"
    )
    max_text_chars: int = Field(
        default=1_000_000, ge=1, description="longest prompt or output accepted (422 beyond)"
    )
    max_batch: int = Field(default=64, ge=1, description="pairs in one /v1/scan/batch request")

    # -- security -----------------------------------------------------------------------------
    tokens: SecretStr | None = Field(default=None, description="bearer tokens, comma-separated")
    token_file: Path | None = Field(default=None, description="a file of bearer tokens, one a line")

    # -- shutdown -----------------------------------------------------------------------------
    drain_s: float = Field(
        default=0.0,
        ge=0,
        description="after SIGTERM, answer 503 this long before closing the socket",
    )
    graceful_timeout_s: float = Field(default=30.0, gt=0, description="wait for in-flight requests")

    # -- LLM Guard API compatibility ----------------------------------------------------------
    compat_scanner_name: str = Field(
        default="NoRefusal", min_length=1, description="the key in LLM Guard API's 'scanners' map"
    )

    @field_validator("token_file")
    @classmethod
    def _token_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"token_file {str(value)!r} is not a file")
        return value

    def token_digests(self) -> frozenset[bytes]:
        """SHA-256 digests of the accepted bearer tokens; empty when auth is off.

        Comparing digests in constant time hides the tokens' lengths as well as their bytes.
        """
        raw: list[str] = []
        if self.tokens is not None:
            raw += self.tokens.get_secret_value().split(",")
        if self.token_file is not None:
            raw += self.token_file.read_text(encoding="utf-8").splitlines()
        tokens = [t.strip() for t in raw if t.strip()]
        return frozenset(hashlib.sha256(t.encode("utf-8")).digest() for t in tokens)

    def scanner_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~norefusal.NoRefusalScanner`."""
        return {
            "model": self.model,
            "backend": self.backend,
            "threshold": self.threshold,
            "match": self.match,
            "max_tokens": self.max_tokens,
        }


def _read_config(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = fh.read(_MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"Cannot read the config file {path}: {exc.strerror}.") from None
    if len(data) > _MAX_CONFIG_BYTES:
        raise ConfigurationError(f"The config file {path} is larger than 1 MB.")
    try:
        text = data.decode("utf-8")
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise ConfigurationError(
            f"The config file {path} is not valid YAML or JSON: {exc}"
        ) from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigurationError(f"The config file {path} must hold a mapping of settings.")
    if "tokens" in values:
        raise ConfigurationError(
            f"The config file {path} sets 'tokens': put tokens in a token_file or the "
            f"{ENV_PREFIX}TOKENS environment variable, not in a config file."
        )
    return values


def load_settings(
    config_file: Path | None = None, overrides: dict[str, Any] | None = None
) -> ServeSettings:
    """Settings from ``overrides`` (flags), then the environment, then ``config_file``.

    Raises:
        ConfigurationError: a bad file, an unknown key or an invalid value (the message names
            the setting, never a token).
    """
    file_values = _read_config(config_file) if config_file is not None else {}
    try:
        from_env = ServeSettings()
        env_values = from_env.model_dump(include=from_env.model_fields_set)
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        return ServeSettings(**{**file_values, **env_values, **given})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigurationError(f"Invalid serve settings: {problems}.") from None
