"""One error taxonomy for the HTTP API: every failure is JSON ``{"error": {"code": str, "message": str}}``.

``ApiError`` subclasses are what our own code raises. The handlers registered by ``install_error_handlers`` map
everything else onto the same shape: FastAPI validation errors (400 for a body that is not JSON or not UTF-8, 422
for a body of the wrong shape), Starlette HTTP errors (404, 405, 413 from the body-size limit) and, as a last
resort, any other exception (503 ``internal_error``, logged with its traceback, never with post text).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("counterpoint.api")

MODEL_VERSION_HEADER = "X-Model-Version"


class ApiError(Exception):
    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.headers = headers or {}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str):
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class InvalidRequest(ApiError):
    status, code = 422, "invalid_request"


class Overloaded(ApiError):
    status, code = 429, "overloaded"

    def __init__(self, message: str):
        super().__init__(message, headers={"Retry-After": "1"})


class Unavailable(ApiError):
    status, code = 503, "not_ready"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message, code=code, headers={"Retry-After": "1"})


# Codes for errors raised by Starlette/FastAPI rather than by us.
_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 413: "payload_too_large",
               415: "unsupported_media_type", 422: "invalid_request", 429: "overloaded", 503: "not_ready"}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(request: Request, status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    headers = dict(headers or {})
    version = getattr(request.app.state, "model_version", None)
    if version:
        headers.setdefault(MODEL_VERSION_HEADER, version)
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _location(loc: tuple | list) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) if parts else "body"


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def describe_validation_error(exc: RequestValidationError, content_type: str | None = "application/json",
                              limit: int = 3) -> tuple[int, str, str]:
    """Status, code and a short message for a validation error; never echoes the input (it may be post text)."""
    errors = list(exc.errors())
    if any(err.get("type") == "json_invalid" for err in errors):
        detail = next(err for err in errors if err.get("type") == "json_invalid").get("ctx", {}).get("error", "")
        return 400, "invalid_json", f"the request body is not valid JSON ({detail}); send {{\"texts\": [\"...\"]}}"
    parts = []
    for err in errors[:limit]:
        where = _location(err.get("loc", ()))
        kind = err.get("type", "")
        if kind == "extra_forbidden":
            hint = " (did you mean 'texts'?)" if where in ("text", "inputs", "input", "data") else ""
            parts.append(f"unknown field '{where}'{hint}")
        elif kind == "missing":
            parts.append(f"'{where}' is required")
        elif kind in ("model_attributes_type", "dict_type") and where == "body":
            if not _is_json(content_type):  # FastAPI leaves a body not declared as JSON unparsed
                return 400, "invalid_content_type", ("the body must be JSON sent with the header "
                                                     "`Content-Type: application/json`")
            parts.append("the body must be a JSON object like {\"texts\": [\"...\"]}")
        else:
            parts.append(f"{where}: {err.get('msg', 'invalid value')}")
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return 422, "invalid_request", "; ".join(parts) or "invalid request"


class BodyLimitMiddleware:
    """413 for request bodies over ``max_bytes``, as JSON in our error shape.

    A declared ``Content-Length`` over the limit is refused before the body is read; a chunked body is counted as
    it arrives and refused when it crosses the limit (the error surfaces through the 413 handler below).
    Starlette's own limiter would replace our JSON with a plain-text 413, so we do it here.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
                break
        if declared is not None and declared > self.max_bytes:
            response = JSONResponse(error_body("payload_too_large", self.message(declared)), status_code=413,
                                    headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise StarletteHTTPException(413, self.message(None))
            return message

        await self.app(scope, limited_receive, send)

    def message(self, size: int | None) -> str:
        got = f" ({size} bytes)" if size is not None else ""
        return (f"the request body is larger than the limit of {self.max_bytes} bytes{got}; "
                "send fewer or shorter texts per request")


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(request, exc.status, exc.code, exc.message, exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    status, code, message = describe_validation_error(exc, request.headers.get("content-type"))
    return error_response(request, status, code, message)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error")
    if status == 413:
        limit = getattr(request.app.state, "max_body_bytes", None)
        message = (f"the request body is larger than the limit of {limit} bytes; send fewer or shorter texts "
                   "per request" if limit else "the request body is too large")
    elif status == 400 and exc.detail == "There was an error parsing the body":
        # FastAPI's wording for any failure while parsing the body; the cause says which.
        cause = exc.__cause__
        if isinstance(cause, RecursionError):
            code, message = "invalid_json", ("the request body nests JSON arrays or objects too deeply; send "
                                             "{\"texts\": [\"...\"]}")
        elif cause is None or isinstance(cause, UnicodeError):
            code, message = "invalid_unicode", "the request body could not be decoded; send UTF-8 encoded JSON"
        else:
            code, message = "invalid_json", "the request body could not be parsed as JSON; send {\"texts\": [\"...\"]}"
    elif status == 404:
        message = f"no route {request.url.path}; see /docs for the API"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(request, status, code, message, getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The contract allows 503 as the only 5xx: an unexpected failure is reported as the service being unable to
    # answer this request now (logged with its traceback, never with post text).
    log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
    return error_response(request, 503, "internal_error", "an unexpected error occurred; it has been logged. "
                                                          "Retry later")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
