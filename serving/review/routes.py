"""Review routes: the queue, decisions, appeals, feedback export, and the console page at ``GET /``.

Roles: a key in ``COUNTERPOINT_API_KEYS`` classifies, enqueues, reviews and decides; a key in
``COUNTERPOINT_ADMIN_KEYS`` may also export feedback and read the full event trail (``/v1/admin/...``). With no keys
configured the API is open, as ``/v1/classify`` is (a local deployment).

Who decided: the ``moderator`` name the request gives (the console asks for one), else ``key:<key id>``, where the
key id is the first 12 hex digits of the key's SHA-256 (the key itself is never stored). The key id is stored with
every event either way. An appeal is decided only by a moderator who did not decide the post before.

Routes are sync functions (FastAPI runs them in its thread pool): each is one short database transaction.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Annotated, Any, Iterator

import anyio
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from serving import labels as L
from serving.api.auth import KeyChecker
from serving.api.errors import ApiError, Unauthorized
from serving.api.schemas import ErrorResponse
from serving.review.store import ReviewStore, Scored, StoreError, Who, open_store

STATIC = Path(__file__).resolve().parent / "static"


class ReviewError(ApiError):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message, code=code)
        self.status = status


class Forbidden(ReviewError):
    def __init__(self, message: str):
        super().__init__(403, "forbidden", message)


# -- roles ------------------------------------------------------------------------------------------------------
def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


def _key_id(key: str | None) -> str | None:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:12] if key else None


class Caller(BaseModel):
    key_id: str | None
    admin: bool


def caller(request: Request) -> Caller:
    users: KeyChecker = request.app.state.key_checker  # API keys and admin keys
    admins: KeyChecker = request.app.state.admin_key_checker
    if not users.enabled:
        return Caller(key_id=None, admin=True)
    key = _presented_key(request)
    if key is None:
        raise Unauthorized("this API needs an API key: send `Authorization: Bearer <key>`")
    if not users.check(key):
        raise Unauthorized("the API key is not valid")
    return Caller(key_id=_key_id(key), admin=admins.enabled and admins.check(key))


def admin(who: Annotated[Caller, Depends(caller)]) -> Caller:
    if not who.admin:
        raise Forbidden("this route needs an admin key (COUNTERPOINT_ADMIN_KEYS)")
    return who


Moderator = Annotated[Caller, Depends(caller)]
Admin = Annotated[Caller, Depends(admin)]


def _who(c: Caller, name: str | None) -> Who:
    name = (name or "").strip()
    if len(name) > 128:
        raise ReviewError(422, "invalid_request", "moderator names are at most 128 characters")
    return Who(name or (f"key:{c.key_id}" if c.key_id else "anonymous"), c.key_id)


# -- the store --------------------------------------------------------------------------------------------------
_store_lock = threading.Lock()


def get_store(request: Request) -> ReviewStore:
    """Opened (and migrated) on first use, so apps that never review never create a database."""
    state = request.app.state
    if state.review_store is None:
        with _store_lock:
            if state.review_store is None:
                try:
                    state.review_store = open_store(state.settings)
                except ValueError as exc:
                    raise ReviewError(503, "store_unavailable", str(exc)) from None
    return state.review_store


Store = Annotated[ReviewStore, Depends(get_store)]


def _guard(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except StoreError as exc:
        raise ReviewError(exc.status, exc.code, str(exc)) from None


# -- bodies -----------------------------------------------------------------------------------------------------
class EnqueueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr] = Field(..., min_length=1, description="Posts to put in the review queue.")
    source_ids: list[StrictStr | None] | None = Field(None, description="Your id of each post (same order).")
    profile: StrictStr | None = Field(None, description="Threshold profile whose review band and thresholds apply.")


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: StrictStr = Field(..., description=f"The moderator's label: one of {', '.join(L.LABELS)}.")
    reason: StrictStr | None = Field(None, max_length=2000)
    moderator: StrictStr | None = Field(None, max_length=128, description="Who decides (default: the key's id).")


class AppealRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: StrictStr = Field(..., min_length=1, max_length=2000)
    moderator: StrictStr | None = Field(None, max_length=128, description="Who files the appeal.")


class SkipRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    moderator: StrictStr | None = Field(None, max_length=128)


# -- routes -----------------------------------------------------------------------------------------------------
_WHY = {400: "Body is not JSON", 401: "Missing or invalid API key (when keys are set)",
        403: "Needs an admin key, or the same moderator may not decide an appeal",
        404: "No such review item", 409: "Claimed by another moderator, or already decided",
        413: "Too many texts or a text too long", 422: "Body of the wrong shape, or an unknown label or profile",
        429: "Queue full: retry after a moment", 503: "Model or store not ready; retry later"}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorResponse, "description": _WHY[s]} for s in statuses}


review = APIRouter(prefix="/v1/review", tags=["review"])
feedback = APIRouter(tags=["review"])
console = APIRouter(include_in_schema=False)


@review.post("/items", summary="Classify posts and put them in the review queue",
             responses=_errors(400, 401, 413, 422, 429, 503))
async def enqueue(body: EnqueueRequest, request: Request, who: Moderator) -> dict[str, Any]:
    from serving.api import app as api  # the app module mounts this router: import at call time

    service = api.get_service(request)
    settings = service.settings
    if body.source_ids is not None and len(body.source_ids) != len(body.texts):
        raise ReviewError(422, "invalid_request", "source_ids must have one entry per text")
    api.check_texts(body.texts, settings)
    profile = service.profile_for(body.profile)
    costs = await anyio.to_thread.run_sync(api.text_costs, service.predictor, body.texts, settings)
    predictions = await service.classify(body.texts, costs, request)
    predictions = [p.under(profile) for p in predictions]
    sources = body.source_ids or [None] * len(body.texts)
    posts = [Scored.of(t, p, profile, service.model.name, service.model.version, s)
             for t, p, s in zip(body.texts, predictions, sources)]
    store = get_store(request)
    ids = await anyio.to_thread.run_sync(_guard, store.enqueue, posts)
    return {"items": [{"id": i, **p.to_dict()} for i, p in zip(ids, predictions)]}


@review.get("/next", summary="Claim the next posts to review (appeals, then disagreements, then the review band)",
            responses=_errors(401, 422, 503))
def next_items(store: Store, who: Moderator, moderator: Annotated[str | None, Query(max_length=128)] = None,
               limit: Annotated[int, Query(ge=1, le=50)] = 1) -> dict[str, Any]:
    items = _guard(store.claim, _who(who, moderator), limit)
    return {"items": items, "lease_s": store.lease.total_seconds()}


@review.get("/items/{item_id}", summary="One queue item with its full trail", responses=_errors(401, 404, 503))
def get_item(item_id: str, store: Store, who: Moderator) -> dict[str, Any]:
    return _guard(store.item, item_id)


@review.post("/items/{item_id}/decisions", summary="Decide a post: agree with the model or correct the label",
             responses=_errors(400, 401, 403, 404, 409, 422, 503))
def decide(item_id: str, body: DecisionRequest, store: Store, who: Moderator) -> dict[str, Any]:
    return _guard(store.decide, item_id, _who(who, body.moderator), body.label, body.reason)


@review.post("/items/{item_id}/skip", summary="Release a claimed post without deciding it",
             responses=_errors(400, 401, 404, 422, 503))
def skip(item_id: str, body: SkipRequest, store: Store, who: Moderator) -> dict[str, Any]:
    _guard(store.release, item_id, _who(who, body.moderator))
    return {"status": "skipped"}


@review.post("/items/{item_id}/appeals", summary="Appeal a decision; a different moderator decides the appeal",
             responses=_errors(400, 401, 404, 409, 422, 503))
def appeal(item_id: str, body: AppealRequest, store: Store, who: Moderator) -> dict[str, Any]:
    return _guard(store.appeal, item_id, _who(who, body.moderator), body.reason)


@review.get("/stats", summary="Queue counts by status", responses=_errors(401, 503))
def stats(store: Store, who: Moderator) -> dict[str, int]:
    return store.stats()


@feedback.get("/v1/admin/review/events", summary="The whole append-only trail (admin)",
              responses=_errors(401, 403, 503))
def events(store: Store, who: Admin) -> dict[str, Any]:
    return {"events": store.events()}


@feedback.get("/v1/feedback/export", summary="Decided posts as corpus JSONL for retraining (admin)",
              response_class=StreamingResponse,
              responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                               "description": "One corpus row per line"}, **_errors(401, 403, 503)})
def export(store: Store, who: Admin) -> StreamingResponse:
    from serving.review.export import feedback_rows

    def lines() -> Iterator[str]:
        for row in feedback_rows(store):
            yield json.dumps(row, ensure_ascii=False) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": 'attachment; filename="feedback.jsonl"'})


@console.get("/")
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


def install_review(app: FastAPI, api_keys: list[str], admin_keys: list[str]) -> None:
    """Mount the review routes, the console and its static files; key checkers for the two roles."""
    app.state.admin_key_checker = KeyChecker(admin_keys)
    app.state.review_store = None
    app.include_router(review)
    app.include_router(feedback)
    app.include_router(console)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
