"""Request and response bodies of the service: its own ``/v1`` API and LLM Guard API's.

The LLM Guard API models repeat the names, fields, types, titles and defaults of
``llm_guard_api/app/schemas.py`` (protectai/llm-guard), so an OpenAPI client generated for
LLM Guard API reads ours unchanged; ``tests/test_server_api.py`` checks the schema against
theirs. Errors everywhere have LLM Guard API's shape too: ``{"message": ..., "details": ...}``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from .._result import ScanResult

__all__ = [
    "AnalyzeOutputRequest",
    "AnalyzeOutputResponse",
    "BatchRequest",
    "BatchResponse",
    "ErrorBody",
    "ScanOutputRequest",
    "ScanOutputResponse",
    "ScanRequest",
    "ScanResponse",
    "ServiceInfo",
]


# -- /v1 -----------------------------------------------------------------------------------------


class ScanRequest(BaseModel):
    """One (prompt, output) pair."""

    prompt: str = Field("", description="the prompt that produced the output")
    output: str = Field(description="the model output to scan")
    include_output: bool = Field(
        False, description="echo the output back as 'sanitized' (it is never changed)"
    )


class ScanResponse(BaseModel):
    """Every field of a :class:`~norefusal.ScanResult`."""

    valid: bool = Field(description="true when the output is not a refusal")
    risk: float = Field(description="LLM Guard's risk score in [-1, 1]")
    score: float = Field(description="P(refusal) in [0, 1]")
    is_refusal: bool
    threshold: float
    signal: str = Field(description="what decided: classifier, empty, ...")
    model: str
    detail: str | None = None
    sanitized: str | None = Field(None, description="the output, when include_output was set")

    @classmethod
    def of(cls, result: ScanResult, *, include_output: bool = False) -> ScanResponse:
        return cls.model_construct(**result.to_dict(include_output=include_output))


class BatchRequest(BaseModel):
    """Many pairs, scanned in order; at most ``max_batch`` (64 unless configured)."""

    pairs: list[ScanRequest] = Field(description="the pairs to scan")
    include_output: bool = Field(False, description="echo each output back as 'sanitized'")


class BatchResponse(BaseModel):
    results: list[ScanResponse] = Field(description="one result per pair, in order")


class ServiceInfo(BaseModel):
    """What the service scans with: enough for a client to label its results."""

    model: str
    backend: str
    threshold: float
    match: str
    max_batch: int
    max_text_chars: int
    version: str


class ErrorBody(BaseModel):
    """Every error: a sentence, and for validation errors a list of {loc, msg, type}.

    Never holds prompt or output text.
    """

    message: str
    details: Any = None


# -- LLM Guard API (llm_guard_api/app/schemas.py) ---------------------------------------------


class ScanOutputRequest(BaseModel):
    prompt: str = Field(title="Prompt")
    output: str = Field(title="Model output")
    scanners_suppress: list[str] = Field(title="Scanners to suppress", default=[])


class ScanOutputResponse(BaseModel):
    is_valid: bool = Field(title="Whether the output is safe")
    scanners: dict[str, float] = Field(title="Risk scores of individual scanners")


class AnalyzeOutputRequest(ScanOutputRequest):
    pass


class AnalyzeOutputResponse(ScanOutputResponse):
    sanitized_output: str = Field(title="Sanitized output")
