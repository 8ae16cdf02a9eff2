"""The ASGI app: ``create_app(settings)`` builds it; routes parse, call the scanner, serialise.

Routes (auth on all but the probes and the schema, when tokens are configured):

- ``POST /v1/scan``, ``POST /v1/scan/batch``, ``GET /v1/info``: norefusal's own API;
- ``POST /analyze/output``, ``POST /scan/output``: LLM Guard API's, same shapes and codes;
- ``GET /healthz`` (alive), ``GET /readyz`` (model loaded and warmed, not draining),
  ``GET /metrics`` (Prometheus), ``GET /openapi.json``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from .. import __version__
from .._result import ScanResult
from .._scanner import NoRefusalScanner
from ._gate import Gate, is_draining
from ._metrics import CONTENT_TYPE, ServiceMetrics
from ._schemas import (
    AnalyzeOutputRequest,
    AnalyzeOutputResponse,
    BatchRequest,
    BatchResponse,
    ErrorBody,
    ScanOutputRequest,
    ScanOutputResponse,
    ScanRequest,
    ScanResponse,
    ServiceInfo,
)
from ._service import Overloaded, ScanFailed, ScanService, ScanTimedOut
from ._settings import ServeSettings

__all__ = ["create_app"]

logger = logging.getLogger("norefusal.server")

_ROUTES = (
    "/",
    "/v1/scan",
    "/v1/scan/batch",
    "/v1/info",
    "/analyze/output",
    "/scan/output",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
)
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        401: "Missing or wrong bearer token",
        408: "No result in time (LLM Guard API's routes)",
        413: "Body too large",
        422: "Validation failed (details: loc, msg, type)",
        500: "The scanner failed",
        503: "Queue full or shutting down (Retry-After)",
        504: "No result within scan_timeout_s (/v1 routes)",
    }.items()
}
_bearer = HTTPBearer(auto_error=False)


class _State:
    """What the routes need, held by the app (``app.state.norefusal``), never global."""

    def __init__(self, settings: ServeSettings, service: ScanService, metrics: ServiceMetrics):
        self.settings = settings
        self.service = service
        self.metrics = metrics
        self.digests = settings.token_digests()


# Dependencies are coroutines: FastAPI runs a plain function in a worker thread per request.
async def _state(request: Request) -> _State:
    state: _State = request.app.state.norefusal
    return state


State = Annotated[_State, Depends(_state)]


async def _authorize(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    if not state.digests:
        return
    ok = False
    if credentials is not None:
        digest = hashlib.sha256(credentials.credentials.encode("utf-8")).digest()
        for known in state.digests:  # every token compared, in constant time each
            ok |= hmac.compare_digest(digest, known)
    if not ok:
        raise HTTPException(401, "Unauthorized", headers={"WWW-Authenticate": "Bearer"})


Authorized = Depends(_authorize)


def _too_long(loc: Sequence[str | int], limit: int) -> dict[str, Any]:
    return {
        "loc": ["body", *loc],
        "msg": f"String should have at most {limit} characters",
        "type": "string_too_long",
    }


def _check_texts(
    state: _State,
    pairs: Sequence[ScanRequest | ScanOutputRequest],
    *,
    prefix: Sequence[str | int] = (),
) -> None:
    limit = state.settings.max_text_chars
    errors = []
    for i, pair in enumerate(pairs):
        at = [*prefix, i] if prefix else []
        if len(pair.prompt) > limit:
            errors.append(_too_long([*at, "prompt"], limit))
        if len(pair.output) > limit:
            errors.append(_too_long([*at, "output"], limit))
    if errors:
        raise RequestValidationError(errors)


class _AsciiJSON(JSONResponse):
    """JSON with every non-ASCII character escaped: a lone surrogate (valid in a JSON string
    escape, and in a Python str) cannot be encoded as UTF-8, so the default renderer fails."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _echo(model: BaseModel, *texts: str) -> Any:
    """``model`` as the route's response, or rendered ASCII-escaped if it echoes a text that
    is not valid UTF-8 (a lone surrogate), which FastAPI's fast serializer would fail on."""
    for text in texts:
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return _AsciiJSON(model.model_dump(mode="json", exclude_unset=True))
    return model


async def _scan(
    state: _State, pairs: list[tuple[str, str]], *, timeout_status: int = 504
) -> list[ScanResult]:
    metrics = state.metrics
    metrics.batch_size.observe(len(pairs))
    try:
        results = await state.service.scan(pairs)
    except Overloaded:
        metrics.errors.labels("overloaded").inc()
        raise HTTPException(
            503,
            "The scan queue is full; retry later.",
            headers={"Retry-After": str(state.settings.retry_after_s)},
        ) from None
    except ScanTimedOut:
        metrics.errors.labels("timeout").inc()
        # LLM Guard API answers 408 "Request timeout." on its routes; ours say what happened.
        message = (
            "Request timeout."
            if timeout_status == 408
            else f"The scan did not finish within {state.settings.scan_timeout_s} s."
        )
        raise HTTPException(timeout_status, message) from None
    except ScanFailed as exc:
        metrics.errors.labels("scanner").inc()
        logger.error("The scanner failed with %s.", exc.kind)
        raise HTTPException(500, f"The scanner failed ({exc.kind}).") from None
    metrics.scans.inc(len(results))
    metrics.refusals.inc(sum(r.is_refusal for r in results))
    return results


def _routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def root() -> dict[str, str]:
        return {"name": "norefusal", "version": __version__}

    @app.get("/healthz", tags=["Health"])
    async def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "alive"}

    @app.get("/readyz", tags=["Health"], responses={503: _ERRORS[503]})
    async def readyz(request: Request, state: State) -> Any:
        """Ready: the model is loaded, a warm-up scan passed, and the server is not draining."""
        if is_draining(request.scope):
            return JSONResponse({"message": "Draining.", "details": None}, status_code=503)
        if not state.service.ready:
            return JSONResponse({"message": "Loading.", "details": None}, status_code=503)
        return {"status": "ready"}

    @app.get("/metrics", tags=["Health"], dependencies=[Authorized])
    async def metrics(state: State) -> Response:
        """Prometheus metrics (requests, latency, scans, refusals, errors, queue depth)."""
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/info", tags=["Scan"], dependencies=[Authorized], response_model=ServiceInfo)
    async def info(state: State) -> ServiceInfo:
        """The model, threshold and limits the service scans with."""
        scanner = state.service.scanner
        return ServiceInfo(
            model=scanner.model_name,
            backend=scanner.backend_name,
            threshold=scanner.threshold,
            match=scanner.match.value,
            max_batch=state.settings.max_batch,
            max_text_chars=state.settings.max_text_chars,
            version=__version__,
        )

    @app.post(
        "/v1/scan",
        tags=["Scan"],
        dependencies=[Authorized],
        response_model=ScanResponse,
        response_model_exclude_unset=True,
        responses=_ERRORS,
    )
    async def scan(body: ScanRequest, state: State) -> Any:
        """Scan one output: every field of a ScanResult, as ``scanner.scan(prompt, output)``."""
        _check_texts(state, [body])
        (result,) = await _scan(state, [(body.prompt, body.output)])
        response = ScanResponse.of(result, include_output=body.include_output)
        return _echo(response, body.output) if body.include_output else response

    @app.post(
        "/v1/scan/batch",
        tags=["Scan"],
        dependencies=[Authorized],
        response_model=BatchResponse,
        response_model_exclude_unset=True,
        responses=_ERRORS,
    )
    async def scan_batch(body: BatchRequest, state: State) -> Any:
        """Scan up to ``max_batch`` pairs, in order, as ``scanner.scan_batch(pairs)``."""
        limit = state.settings.max_batch
        if len(body.pairs) > limit:
            raise RequestValidationError(
                [
                    {
                        "loc": ["body", "pairs"],
                        "msg": f"List should have at most {limit} items",
                        "type": "too_long",
                    }
                ]
            )
        _check_texts(state, body.pairs, prefix=["pairs"])
        results = await _scan(state, [(p.prompt, p.output) for p in body.pairs])
        response = BatchResponse(
            results=[ScanResponse.of(r, include_output=body.include_output) for r in results]
        )
        if body.include_output:
            return _echo(response, *(p.output for p in body.pairs))
        return response

    @app.post(
        "/analyze/output",
        tags=["Analyze"],
        dependencies=[Authorized],
        response_model=AnalyzeOutputResponse,
        responses=_ERRORS,
        description="Analyze an output and return the sanitized output and the results of "
        "the scanners",
    )
    async def analyze_output(body: AnalyzeOutputRequest, state: State) -> Any:
        _check_texts(state, [body])
        name = state.settings.compat_scanner_name
        # llm_guard.scan_output returns before any scanner on an empty output, or none left.
        if name in body.scanners_suppress or not body.output.strip():
            response = AnalyzeOutputResponse(
                sanitized_output=body.output, is_valid=True, scanners={}
            )
        else:
            (result,) = await _scan(state, [(body.prompt, body.output)], timeout_status=408)
            response = AnalyzeOutputResponse(
                sanitized_output=result.sanitized,
                is_valid=result.valid,
                scanners={name: result.risk},
            )
        return _echo(response, body.output)

    @app.post(
        "/scan/output",
        tags=["Analyze"],
        dependencies=[Authorized],
        response_model=ScanOutputResponse,
        responses=_ERRORS,
        description="Scans an output running scanners in parallel without sanitizing the prompt",
    )
    async def scan_output(body: ScanOutputRequest, state: State) -> ScanOutputResponse:
        _check_texts(state, [body])
        name = state.settings.compat_scanner_name
        if name in body.scanners_suppress:
            return ScanOutputResponse(is_valid=True, scanners={})
        # Unlike /analyze/output, LLM Guard API calls each scanner even on an empty output.
        (result,) = await _scan(state, [(body.prompt, body.output)], timeout_status=408)
        return ScanOutputResponse(is_valid=result.valid, scanners={name: result.risk})


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"message": str(exc.detail), "details": None},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # pydantic's errors carry the offending input (request text): keep loc, msg, type only.
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"message": "Validation failed", "details": details}, status_code=422)


def create_app(
    settings: ServeSettings | None = None, *, scanner: NoRefusalScanner | None = None
) -> FastAPI:
    """Build the service's ASGI app.

    The model loads and a warm-up scan runs in the app's lifespan (startup), in a worker
    thread; ``/readyz`` answers 200 after that. Any ASGI server can run the app (uvicorn does
    for ``norefusal serve``; Ray Serve can mount it).

    Args:
        settings: the service settings; defaults to :class:`ServeSettings` read from the
            environment.
        scanner: a scanner to serve instead of building one from ``settings`` (whose scanner
            fields are then unused).
    """
    settings = settings if settings is not None else ServeSettings()
    scanner = scanner if scanner is not None else NoRefusalScanner(**settings.scanner_options())
    metrics = ServiceMetrics()
    service = ScanService(
        scanner,
        threads=settings.scan_threads,
        queue_size=settings.queue_size,
        timeout_s=settings.scan_timeout_s,
        on_depth=metrics.queue_depth.set,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        logger.info(
            "norefusal serve: model %r (%s, threshold %s) ready, %d scan threads.",
            scanner.model_name,
            scanner.backend_name,
            scanner.threshold,
            settings.scan_threads,
        )
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="norefusal",
        description="Refusal detection as a service; LLM Guard API's output routes included.",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.norefusal = _State(settings, service, metrics)
    _routes(app)
    _error_handlers(app)
    app.add_middleware(
        Gate,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        routes=_ROUTES,
        retry_after_s=settings.retry_after_s,
        access_log=settings.access_log,
    )
    return app
