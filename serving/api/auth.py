"""Optional API keys for ``/v1/*``.

When ``COUNTERPOINT_API_KEYS`` is empty the API is open. Otherwise a request needs ``Authorization: Bearer <key>``
with one of the keys. Keys are compared in constant time (``hmac.compare_digest`` against every key, without
stopping at the first match), so response timing does not reveal how much of a key was right. Health and metrics
routes stay open so orchestrators and scrapers need no secret.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serving.api.errors import Unauthorized

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


def require_api_key(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]) -> None:
    checker: KeyChecker = request.app.state.key_checker
    if not checker.enabled:
        return
    if credentials is None:
        raise Unauthorized("this API needs an API key: send `Authorization: Bearer <key>`")
    if credentials.scheme.lower() != "bearer" or not checker.check(credentials.credentials):
        raise Unauthorized("the API key is not valid")


ApiKey = Annotated[None, Depends(require_api_key)]
