"""Optional API keys for ``/v1/*``.

When ``COUNTERPOINT_API_KEYS`` (and ``COUNTERPOINT_ADMIN_KEYS``) are empty the API is open. Otherwise a request
needs ``Authorization: Bearer <key>`` with one of the keys; admin keys may do everything API keys may, and
``/v1/admin/*`` routes need one (``require_admin_key``). Keys are compared in constant time
(``hmac.compare_digest`` against every key, without stopping at the first match), so response timing does not
reveal how much of a key was right. Health and metrics routes stay open so orchestrators and scrapers need no secret.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.api.errors import ApiError, Unauthorized, error_body

# auto_error=False: we raise our own JSON 401 instead of FastAPI's; the scheme still documents auth in /docs.
bearer_scheme = HTTPBearer(auto_error=False, description="An API key from COUNTERPOINT_API_KEYS (when set).")


class KeyChecker:
    def __init__(self, keys: tuple[str, ...] | list[str]):
        self._keys = [key.encode("utf-8") for key in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, presented: str | None) -> bool:
        if not self._keys:
            return True
        if not presented:
            return False
        candidate = presented.encode("utf-8", "surrogateescape")
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(candidate, key)
        return matched


async def require_api_key(request: Request,
                          credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]) -> None:
    """``async``: a plain ``def`` dependency would cost a thread-pool hop on every request."""
    checker: KeyChecker = request.app.state.key_checker
    if not checker.enabled:
        return
    if credentials is None:
        raise Unauthorized("this API needs an API key: send `Authorization: Bearer <key>`")
    if credentials.scheme.lower() != "bearer" or not checker.check(credentials.credentials):
        raise Unauthorized("the API key is not valid")


ApiKey = Annotated[None, Depends(require_api_key)]


class Forbidden(ApiError):
    status, code = 403, "forbidden"


async def require_admin_key(request: Request,
                            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]) -> None:
    """Admin routes (``/v1/admin/...``): open when no keys are set at all (as the rest of the API is); otherwise a
    valid key (401) that is one of ``COUNTERPOINT_ADMIN_KEYS`` (403 for an ordinary API key)."""
    await require_api_key(request, credentials)
    if not request.app.state.key_checker.enabled:
        return
    admins: KeyChecker | None = getattr(request.app.state, "admin_key_checker", None)
    if admins is None or not admins.enabled or not admins.check(credentials.credentials):
        raise Forbidden("this route needs an admin key (COUNTERPOINT_ADMIN_KEYS)")


AdminKey = Annotated[None, Depends(require_admin_key)]


class ApiKeyMiddleware:
    """401 for a ``/v1/*`` request without a valid key, decided from the headers alone.

    FastAPI reads and parses the body before it runs route dependencies, so without this a caller with no key
    would cost body reading and JSON parsing (and get ``400 invalid_json`` for a broken body before its 401).
    Keys of every checker on the app state (``key_checker``, and ``admin_key_checker`` where one exists) pass here;
    routes that need a stronger key still check it in their dependencies.
    """

    def __init__(self, app: ASGIApp, state: Any, prefix: str = "/v1/") -> None:
        self.app = app
        self.state = state
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        checkers = [c for c in (getattr(self.state, "key_checker", None), getattr(self.state, "admin_key_checker",
                                                                                      None)) if c is not None]
        if not any(c.enabled for c in checkers):
            await self.app(scope, receive, send)
            return
        header = next((value for name, value in scope.get("headers", []) if name == b"authorization"), None)
        if not header:
            message = "this API needs an API key: send `Authorization: Bearer <key>`"
        else:
            scheme, _, presented = header.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and presented.strip() and any(
                    c.enabled and c.check(presented.strip()) for c in checkers):
                await self.app(scope, receive, send)
                return
            message = "the API key is not valid"
        response = JSONResponse(error_body("unauthorized", message), status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)
