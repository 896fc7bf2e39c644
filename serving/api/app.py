"""The FastAPI app factory: ``create_app(settings, predictor)``.

Tests and ``run_server`` inject an already loaded predictor; without one the lifespan loads ``settings.model_dir``
(verified) before the app accepts requests. The lifespan then starts the micro-batcher; ``/health/ready`` answers
503 until both are up. Routes are thin: they check limits, hand texts to the batcher and shape the answer.
Every response carries the served model version in the ``X-Model-Version`` header.

Hot swap (``POST /v1/admin/reload``, or ``watch_model``): ``Reloader`` loads ``settings.model_dir`` again (symlinks
resolved), checks it, builds a new predictor and batcher and swaps the ``Service`` in one step. A request takes its
service once (``get_service``) and holds it until its response is sent (``ServiceLeaseMiddleware``), so requests
that started before the swap finish on the old model (and their header names it); the old batcher is stopped once
no request holds it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version as package_version
from typing import Annotated, Any, AsyncIterator, Callable

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving import labels as label_schema
from serving.api.auth import ApiKeyMiddleware, KeyChecker, require_admin_key, require_api_key
from serving.api.batcher import BatcherStopped, MicroBatcher, QueueFull, WindowWork
from serving.api.errors import (MODEL_VERSION_HEADER, ApiError, BodyLimitMiddleware, InvalidRequest, Overloaded,
                                PayloadTooLarge, Unavailable, error_body, install_error_handlers)
from serving.api.metrics import RequestMetricsMiddleware, ServiceMetrics
from serving.api.schemas import (ClassifyRequest, ClassifyResponse, ErrorResponse, Health, InfoResponse, ModelRef,
                                 Ready, ReloadResponse)
from serving.explain import UPPER_LAYERS
from serving.predictor import Predictor, Reply, load_predictor
from serving.profiles import Profile, UnknownProfile, profiles_of
from serving.profiles import resolve as resolve_profile
from serving.settings import Settings, SettingsError, load_settings

log = logging.getLogger("counterpoint.api")
#: How often a waiting request checks whether its client is still connected.
DISCONNECT_POLL_S = 0.25


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {400: "Body is not JSON or not UTF-8", 401: "Missing or invalid API key (when keys are set)",
                    413: "Too many texts (too_many_texts), a text too long in characters (text_too_long) or in model "
                         "windows (too_many_windows), a request over its token budget (request_too_costly), or a "
                         "body too large (payload_too_large); the message names the limit",
                    422: "Body of the wrong shape, empty text, NUL character or invalid Unicode",
                    429: "Queue full: retry after a moment",
                    503: "Model not loaded yet (not_ready), the request timed out (timeout), the model failed on "
                         "this batch (model_error), or an unexpected error (internal_error); retry later"}
    return {s: {"model": ErrorResponse, "description": descriptions[s]} for s in statuses}


@dataclass
class Service:
    """What the routes need once the model is up."""

    settings: Settings
    predictor: Predictor
    batcher: MicroBatcher
    model: ModelRef
    info: dict[str, Any]
    profile: Profile
    #: The model folder it was loaded from, symlinks resolved (what ``watch_model`` compares with).
    source: str | None = None
    _users: int = field(default=0, repr=False)
    _retired: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # A request holds its service from ``get_service`` (which a thread may call, hence the lock) until its
    # response is sent. Once retired (swapped out) a service takes no new holders, so ``users`` only falls.
    def lease(self) -> bool:
        with self._lock:
            if self._retired:
                return False
            self._users += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._users -= 1

    def retire(self) -> None:
        with self._lock:
            self._retired = True

    @property
    def users(self) -> int:
        return self._users

    def profile_for(self, name: str | None) -> Profile:
        if name is None or name == self.profile.name:
            return self.profile
        try:
            return resolve_profile(self.predictor.meta, name)
        except UnknownProfile as exc:
            raise InvalidRequest(f"{exc}; see `profiles` in GET /v1/info", code="unknown_profile") from None

    async def classify(self, texts: list[str], costs: list[int] | None = None,
                       request: Request | None = None, *, reserve: int | None = None,
                       check: Callable[[list], None] | None = None) -> list:
        """Predictions through the batcher. A request that times out, or whose client disconnects, is withdrawn
        from the queue: the batcher schedules none of its remaining texts."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.request_timeout_s
        task = asyncio.ensure_future(self.batcher.submit(texts, costs, reserve=reserve, check=check))
        try:
            while True:
                remaining = deadline - loop.time()
                done, _ = await asyncio.wait({task}, timeout=max(0.0, min(remaining, DISCONNECT_POLL_S)))
                if done:
                    return task.result()
                if loop.time() >= deadline:
                    raise Unavailable(f"the request took longer than {self.settings.request_timeout_s:g} s; retry "
                                      "later", code="timeout")
                if request is not None and await request.is_disconnected():
                    log.info("client disconnected; request withdrawn (%d texts)", len(texts))
                    raise Unavailable("the client disconnected", code="client_disconnected")
        except QueueFull as exc:
            raise Overloaded(f"{exc}; retry after a moment") from None
        except BatcherStopped as exc:
            raise Unavailable(str(exc)) from None
        except ApiError:
            raise
        except Exception as exc:  # the model failed on a batch holding this request (logged by the batcher)
            raise Unavailable(f"the model failed on this request ({type(exc).__name__}); retry later, and report "
                              "it if it persists", code="model_error") from None
        finally:
            if not task.done():
                task.cancel()


def model_ref(predictor: Predictor) -> ModelRef:
    meta = predictor.meta
    return ModelRef(name=meta.name, version=meta.version, sha256=meta.sha256())


def _info(settings: Settings, predictor: Predictor, ref: ModelRef) -> dict[str, Any]:
    meta = predictor.meta
    return {"model": {**ref.model_dump(), "kind": meta.kind, "backend": predictor.backend, "base": meta.base_model,
                      "max_length": meta.max_length, "window_stride": meta.window_stride,
                      "window_aggregation": meta.window_aggregation if meta.kind == "transformer" else "max",
                      "int8": meta.onnx.get("int8"), "int8_note": meta.onnx.get("int8_note"),
                      "fp32": meta.onnx.get("fp32"), "fp32_note": meta.onnx.get("fp32_note"),
                      "context": bool(meta.context), "subtypes": meta.subtypes,
                      "linear_blend": (meta.linear_blend or {}).get("weight"),
                      "subtype_blend": (meta.linear_blend or {}).get("subtype_weight")},
            "labels": label_schema.schema(), "temperature": meta.temperature,
            "thresholds": resolve_profile(meta, settings.profile).thresholds,
            "profiles": {name: p.to_dict() for name, p in profiles_of(meta).items()},
            "default_profile": resolve_profile(meta, settings.profile).name,
            "limits": settings.limits(), "auth": settings.auth_enabled}


def check_texts(texts: list[str], settings: Settings) -> None:
    """Limits and content rules, each failure with its own code and the limit in the message."""
    if len(texts) > settings.max_texts_per_request:
        raise PayloadTooLarge(f"{len(texts)} texts in one request; the limit is {settings.max_texts_per_request}. "
                              "Split the request.", code="too_many_texts")
    for i, text in enumerate(texts):
        if len(text) <= settings.max_chars_per_text and not text.strip():
            raise InvalidRequest(f"texts[{i}] is empty; send non-empty texts only.", code="empty_text")
        _check_content(f"texts[{i}]", text, settings)


def _check_content(where: str, text: str, settings: Settings) -> None:
    """Length, NUL and Unicode rules of one text or parent post (``where`` names it in the message)."""
    if len(text) > settings.max_chars_per_text:
        raise PayloadTooLarge(f"{where} has {len(text)} characters; the limit is {settings.max_chars_per_text} "
                              "characters per text.", code="text_too_long")
    if "\x00" in text:
        raise InvalidRequest(f"{where} contains a NUL character; remove it.", code="invalid_text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"{where} is not valid Unicode (it holds an unpaired surrogate escape).",
                             code="invalid_unicode") from None


def check_contexts(contexts: list[str | None] | None, texts: list[str], predictor: Predictor,
                   settings: Settings) -> list[str | None] | None:
    """Parent posts aligned with the texts (None when none is given); the same content rules as texts."""
    if contexts is None:
        return None
    if len(contexts) != len(texts):
        raise InvalidRequest(f"{len(contexts)} contexts for {len(texts)} texts; send one per text, null where a text "
                             "has no parent post.", code="contexts_mismatch")
    out: list[str | None] = []
    for i, ctx in enumerate(contexts):
        if ctx is None or not ctx.strip():
            out.append(None)
            continue
        _check_content(f"contexts[{i}]", ctx, settings)
        out.append(ctx)
    if not any(out):
        return None
    if not predictor.meta.context:
        raise InvalidRequest(f"model {predictor.meta.name} {predictor.meta.version} does not read parent posts "
                             "(`model.context` is false in /v1/info); send the texts without `contexts`.",
                             code="context_not_supported")
    return out


def text_costs(predictor: Predictor, texts: list[str], settings: Settings,
               contexts: list[str | None] | None = None) -> list[int]:
    """Tokens each text costs the model (over all its windows, its parent's tokens included); 413 for a text with
    more windows than ``max_windows_per_text`` or a request over ``max_tokens_per_request``. Runs before anything
    is queued."""
    measure = getattr(predictor, "window_costs", None)
    if measure is None:
        costs = [(1, len(t) // 4 + 2) for t in texts]
    else:
        costs = measure(texts, contexts) if contexts else measure(texts)
    return check_costs(costs, settings)


def check_costs(costs: list[tuple[int, int]], settings: Settings) -> list[int]:
    """``(windows, tokens)`` per text -> tokens per text, or 413 (``too_many_windows``, ``request_too_costly``)."""
    for i, (windows, _) in enumerate(costs):
        if windows > settings.max_windows_per_text:
            raise PayloadTooLarge(
                f"texts[{i}] is {windows} model windows long; the limit is {settings.max_windows_per_text} windows "
                "per text. Shorten it or split it into several texts.", code="too_many_windows")
    total = sum(tokens for _, tokens in costs)
    if total > settings.max_tokens_per_request:
        raise PayloadTooLarge(
            f"the texts of this request are {total:,} model tokens; the limit is {settings.max_tokens_per_request:,} "
            "tokens per request. Send fewer or shorter texts per request.", code="request_too_costly")
    return [tokens for _, tokens in costs]


def check_plan(plan: list, settings: Settings) -> None:
    """The limits of ``check_costs`` on a window-scheduling split plan (per text: its windows and their tokens)."""
    check_costs([(len(parts), sum(cost for _, cost in parts)) for _, parts in plan], settings)


#: At least one model token per this many bytes of a /v1/classify JSON body (measured on our test and real posts:
#: at most 6 bytes a token in English and Roman Urdu, 8.4 in Urdu as UTF-8 and 23.6 with Urdu escaped as \uXXXX,
#: as Python's json.dumps sends it), so ``Content-Length // BODY_BYTES_PER_TOKEN`` never over-counts a request.
BODY_BYTES_PER_TOKEN = 32


def estimate_tokens(texts: list[str], contexts: list[str | None] | None = None) -> int:
    """A lower bound on a request's model tokens from its characters (at least one token per 8), for admission
    before tokenising."""
    return (sum(map(len, texts)) + sum(len(c) for c in contexts or () if c)) // 8


def reserve_tokens(texts: list[str], contexts: list[str | None] | None, settings: Settings, max_length: int) -> int:
    """An upper bound on a request's model tokens, known before tokenising: a text of ``n`` characters is at most
    ``2n`` pieces (a piece holds at least one character, plus a lone word-start piece), 4/3 of that over
    overlapping windows, plus a parent post and special tokens in every window; and an accepted request never
    costs more than ``max_tokens_per_request`` (else 413)."""
    bound = sum(3 * len(t) + max_length for t in texts)
    if contexts:
        bound += sum(max_length * (1 + 3 * len(t) // max(1, max_length // 2)) for t, c in zip(texts, contexts) if c)
    return min(bound, settings.max_tokens_per_request)


class QueueAdmissionMiddleware:
    """429 for a ``POST /v1/classify`` the queue has no room for, decided from its ``Content-Length`` before the
    body is read or parsed (at least one token per ``BODY_BYTES_PER_TOKEN`` bytes): while the queue is full,
    callers retrying large requests cost no parsing, so a short post from someone else still gets through. The
    route then refuses on a closer estimate (characters) before tokenising, and the batcher on the exact cost."""

    def __init__(self, app: ASGIApp, state: Any, path: str = "/v1/classify") -> None:
        self.app = app
        self.state = state
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The service is looked at in ``_refusal`` only: no reference to it is held while the request runs (the
        # request that swaps the model would otherwise keep the old one alive).
        error = self._refusal(scope) if (scope["type"] == "http" and scope.get("method") == "POST"
                                         and scope.get("path") == self.path) else None
        if error is not None:
            response = JSONResponse(error_body(error.code, str(error)), status_code=error.status,
                                    headers=error.headers)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> "Overloaded | None":
        service: Service | None = getattr(self.state, "service", None)
        if service is None or service.batcher.queue_tokens is None:
            return None
        declared = next((value for name, value in scope.get("headers", []) if name == b"content-length"), None)
        try:
            estimate = int(declared) // BODY_BYTES_PER_TOKEN if declared is not None else 0
        except ValueError:
            estimate = 0
        batcher = service.batcher
        # Only a request that could be served once the queue drains: one over the per-request budget gets its 413
        # from the route, with the exact figure.
        if (estimate and estimate <= service.settings.max_tokens_per_request
                and batcher.depth_tokens + estimate > batcher.queue_tokens):
            return Overloaded(f"the queue is full ({batcher.depth_tokens:,} of {batcher.queue_tokens:,} tokens "
                              f"waiting; this request is at least {estimate:,}); retry after a moment")
        return None


# -- dependencies -----------------------------------------------------------------------------------------------
#: Where a request keeps the service it holds (in its ASGI scope; released by ServiceLeaseMiddleware).
SERVICE_SCOPE_KEY = "counterpoint.service"


def get_service(request: Request) -> Service:
    """The service answering this request: taken once, then the same one for the whole request (across a swap)."""
    held: Service | None = request.scope.get(SERVICE_SCOPE_KEY)
    if held is not None:
        return held
    while True:
        service: Service | None = request.app.state.service
        if service is None or not service.batcher.running:
            raise Unavailable("the model is still loading; retry in a moment")
        if service.lease():  # False: swapped out just now; the next read finds its successor
            break
    request.scope[SERVICE_SCOPE_KEY] = service
    return service


class ServiceLeaseMiddleware:
    """Outermost: ends a request's hold on its service once the response is sent, and names the model that
    answered it in the version header (a request begun before a hot swap is answered by the old model, and says
    so; responses that used no model keep the current version stamped by the metrics middleware)."""

    def __init__(self, app: ASGIApp, header: str) -> None:
        self.app = app
        self.header = header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            service: Service | None = scope.get(SERVICE_SCOPE_KEY)
            if message["type"] == "http.response.start" and service is not None:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != self.header]
                headers.append((self.header, service.model.version.encode("latin-1", "replace")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            service = scope.pop(SERVICE_SCOPE_KEY, None)
            if service is not None:
                service.release()


# The dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop per
# dependency per request (a tenth of the event loop's time at saturation, bench/load.py). (``get_service`` stays a
# plain function: the review routes call it.)
async def ready_service(request: Request) -> Service:
    return get_service(request)


async def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


ReadyService = Annotated[Service, Depends(ready_service)]
Metrics = Annotated[ServiceMetrics, Depends(get_metrics)]

# -- routes -----------------------------------------------------------------------------------------------------
v1 = APIRouter(prefix="/v1", tags=["classify"], dependencies=[Depends(require_api_key)])
health = APIRouter(tags=["operations"])
admin = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin_key)])


@v1.post("/classify", response_model=ClassifyResponse, responses=_errors(400, 401, 413, 422, 429, 503),
         response_model_exclude_unset=True,  # `evidence` only when asked for
         summary="Classify texts as extremist, counter_narrative or neutral")
async def classify(body: ClassifyRequest, service: ReadyService, request: Request) -> dict[str, Any]:
    """Results come back in the order of `texts`. Long texts are split into overlapping token windows whose scores
    are combined by the model's `window_aggregation` (see /v1/info; by default the most extreme window). Cost is
    counted in tokens: see the limits in /v1/info."""
    settings = service.settings
    check_texts(body.texts, settings)
    contexts = check_contexts(body.contexts, body.texts, service.predictor, settings)
    profile = service.profile_for(body.profile)
    started = time.perf_counter()
    items = body.texts if contexts is None else [Reply(t, c) for t, c in zip(body.texts, contexts)]
    if service.batcher.scheduling == "windows":
        # Admitted on an upper bound of its cost (refused for room before any tokenising), then tokenised once (the
        # batcher's split), the limits checked on the split plan, and queued at its exact cost.
        reserve = reserve_tokens(body.texts, contexts, settings, getattr(service.predictor, "max_length", 512))
        predictions = await service.classify(items, request=request, reserve=reserve,
                                             check=lambda plan: check_plan(plan, settings))
    else:
        estimate = estimate_tokens(body.texts, contexts)
        # A queue already full gets 429 before the texts are tokenised: overloaded callers retrying must not cost
        # CPU. (At least one token per 8 characters: an estimate that can only under-count.)
        if service.batcher.queue_tokens is not None and (
                service.batcher.depth_tokens + estimate > service.batcher.queue_tokens):
            raise Overloaded(f"the queue is full ({service.batcher.depth_tokens:,} of "
                             f"{service.batcher.queue_tokens:,} tokens waiting); retry after a moment")
        # Tokenising 64 long texts takes milliseconds of CPU: off the event loop.
        costs = await anyio.to_thread.run_sync(text_costs, service.predictor, body.texts, settings, contexts)
        predictions = await service.classify(items, costs, request)
    if profile is not service.profile:
        predictions = [p.under(profile) for p in predictions]
    if log.isEnabledFor(logging.DEBUG):
        log.debug("classify texts=%d chars=%d ms=%.1f", len(body.texts), sum(map(len, body.texts)),
                  (time.perf_counter() - started) * 1000)
    if settings.log_texts:
        log.info("classify texts=%r labels=%r", body.texts, [p.label for p in predictions])
    results = [p.to_dict() for p in predictions]
    if body.explain:  # word-occlusion evidence on the served predictor (serving/explain.py)
        from serving.explain import explain_async

        if len(body.texts) > settings.max_explain_texts:
            raise PayloadTooLarge(f"{len(body.texts)} texts with explain; the limit is {settings.max_explain_texts} "
                                  "texts per request with explain", code="too_many_texts")
        for result, spans in zip(results, await explain_async(service.predictor, body.texts, contexts)):
            result["evidence"] = spans
    return {"model": service.model, "results": results}


@v1.get("/info", response_model=InfoResponse, responses=_errors(401, 503), summary="Model, labels, limits")
async def info(service: ReadyService) -> dict[str, Any]:
    return service.info


@health.get("/health/live", response_model=Health, summary="The process is up")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@health.get("/health/ready", response_model=Ready, responses=_errors(503),
            summary="The model is loaded and the batcher runs")
async def ready(service: ReadyService) -> dict[str, Any]:
    return {"status": "ready", "model": service.model}


_ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    **_errors(401, 503),
    403: {"model": ErrorResponse,
          "description": "Auth is on and the key is not an admin key (COUNTERPOINT_ADMIN_KEYS)"},
    409: {"model": ErrorResponse, "description": "Another reload is running (reload_in_progress)"},
    422: {"model": ErrorResponse, "description": "The model folder failed to load or verify (reload_failed); the "
                                                 "old model keeps serving"}}


@admin.post("/reload", response_model=ReloadResponse, responses=_ADMIN_ERRORS,
            summary="Load the model folder again and swap it in without a restart")
async def reload_model(request: Request) -> dict[str, Any]:
    """Loads the folder the service was started with (its symlink, e.g. `models/default`, resolved again), verifies
    it and swaps it in. Requests already running finish on the old model, which is stopped once they are done; the
    response comes after that. Answers the old and new model."""
    return await request.app.state.reloader.reload()


@health.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics(registry: Metrics) -> Response:
    return Response(registry.render(), media_type=registry.content_type)


# -- factory ----------------------------------------------------------------------------------------------------
def _version() -> str:
    try:
        return package_version("counterpoint")
    except PackageNotFoundError:
        return "0.0.0"


#: Schedule a transformer's texts window by window (False: whole texts, as before; bench/fairness.py compares).
WINDOW_SCHEDULING = True


async def _build_service(settings: Settings, predictor: Predictor, metrics: ServiceMetrics) -> Service:
    """A started batcher around ``predictor``, and what the routes need of it (not yet published)."""
    ref = model_ref(predictor)
    try:
        profile = resolve_profile(predictor.meta, settings.profile)
    except UnknownProfile as exc:
        raise SettingsError(f"COUNTERPOINT_PROFILE: {exc}") from None
    default = resolve_profile(predictor.meta, None)
    predict = predictor.predict if profile == default else (lambda texts: predictor.predict(texts, profile))

    def predict_items(items: list) -> list:
        """A batch of texts, some of them replies with their parent post (``Reply``)."""
        if not any(isinstance(item, Reply) for item in items):
            return predict(items)
        return predictor.predict([i.text if isinstance(i, Reply) else i for i in items], profile,
                                 contexts=[i.context if isinstance(i, Reply) else None for i in items])

    # Transformers: windows are scheduled one by one (a long text never holds the model for more than one model
    # chunk: a short post waits for about one chunk, not for a whole long text); one model call holds at most one
    # chunk of model_batch_size full windows, and a short post's call no long windows. Other predictors: whole texts.
    work = WindowWork(predictor, profile) if WINDOW_SCHEDULING and WindowWork.supports(predictor) else None
    batch_tokens = settings.max_batch_tokens if work is None else min(
        settings.max_batch_tokens, work.chunk_tokens(settings.model_batch_size))
    batcher = MicroBatcher(predict_items if work is None else work.score, max_batch_size=settings.max_batch_size,
                           max_wait_ms=settings.max_wait_ms, queue_size=settings.queue_size,
                           max_batch_tokens=batch_tokens, queue_tokens=settings.queue_tokens,
                           on_batch=metrics.observe_batch, on_queue_depth=metrics.queue_depth.set, split=work,
                           similar_length=None if work is None else work.SIMILAR_LENGTH)
    await batcher.start()
    folder = getattr(predictor, "folder", None)
    return Service(settings, predictor, batcher, ref, _info(settings, predictor, ref), profile,
                   source=os.path.realpath(folder) if folder is not None else None)


def freeze_heap() -> None:
    """Put every object alive now (the model, the app, the imported modules: ~100k tracked by the cyclic garbage
    collector) out of the collector's reach (``gc.freeze``). A full collection scanned them all, 20-40 ms during
    which no request moved: a latency spike every few thousand requests. Collections now scan what requests
    allocate. Before a model is let go (hot swap) the heap is unfrozen, so that its cycles can be collected."""
    gc.collect()
    gc.freeze()


def _publish(app: FastAPI, service: Service) -> None:
    """Serve ``service`` from now on: one step on the event loop, so every later request sees all of it."""
    ref, predictor = service.model, service.predictor
    app.state.metrics.set_model(name=ref.name, version=ref.version, sha256=ref.sha256, backend=predictor.backend,
                                kind=predictor.meta.kind)
    app.state.service = service
    app.state.model_version = ref.version


async def _start(app: FastAPI, settings: Settings, predictor: Predictor | None) -> None:
    if predictor is None:
        # Loading verifies checksums and builds the inference session: seconds of blocking work.
        predictor = await anyio.to_thread.run_sync(
            lambda: load_predictor(settings.model_dir, settings.backend, threads=settings.threads,
                                   batch_size=settings.model_batch_size, explain_cut=UPPER_LAYERS))
    _publish(app, await _build_service(settings, predictor, app.state.metrics))
    if settings.gc_freeze:
        freeze_heap()
    app.state.metrics.ready.set(1)
    ref = app.state.service.model
    log.info("serving model %s version %s (sha256 %s, %s backend) from %s", ref.name, ref.version, ref.sha256[:12],
             predictor.backend, getattr(predictor, "folder", None))


# -- hot swap ---------------------------------------------------------------------------------------------------
class ReloadFailed(ApiError):
    status, code = 422, "reload_failed"


class ReloadInProgress(ApiError):
    status, code = 409, "reload_in_progress"


#: A text the new model must classify before it is swapped in (it also warms the inference session up).
WARM_UP_TEXTS = ["The ministry announced new rules for madrassa registration today."]


class Reloader:
    """Loads ``settings.model_dir`` again and swaps it in; one reload at a time. Optionally watches the path."""

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self.busy = False
        #: The last resolved folder that failed to load (the watcher does not retry it until the target changes).
        self.failed: str | None = None

    def target(self) -> str:
        return os.path.realpath(self.settings.model_dir)

    def _load(self, folder: str) -> Predictor:
        s = self.settings
        predictor = load_predictor(folder, s.backend, threads=s.threads, batch_size=s.model_batch_size,
                                   explain_cut=UPPER_LAYERS)
        predictor.predict(list(WARM_UP_TEXTS))
        return predictor

    async def reload(self) -> dict[str, Any]:
        if self.busy:
            raise ReloadInProgress("a model reload is already running; wait for it to finish and try again")
        self.busy = True  # set before the first await: a second call on the event loop sees it
        try:
            return await self._reload()
        finally:
            self.busy = False

    async def _reload(self) -> dict[str, Any]:
        old: Service | None = self.app.state.service
        if old is None:
            raise Unavailable("the model is still loading; retry in a moment")
        folder = self.target()
        started = time.perf_counter()
        try:
            # Checksums, label schema and versions are verified by the load; it and the warm-up run off the loop,
            # while the old model keeps answering.
            predictor = await anyio.to_thread.run_sync(self._load, folder)
            service = await _build_service(self.settings, predictor, self.app.state.metrics)
        except Exception as exc:
            self.failed = folder
            log.error("reload of %s failed; still serving %s %s: %s", folder, old.model.name, old.model.version, exc)
            reason = str(exc).rstrip(". ") or type(exc).__name__
            raise ReloadFailed(f"could not load the model folder {folder}: {reason}. The service still serves "
                               f"{old.model.name} {old.model.version}.") from None
        load_s = time.perf_counter() - started
        self.failed = None
        _publish(self.app, service)
        old.retire()
        log.info("swapped model %s %s (sha256 %s) for %s %s (sha256 %s) from %s in %.1f s", old.model.name,
                 old.model.version, old.model.sha256[:12], service.model.name, service.model.version,
                 service.model.sha256[:12], folder, load_s)
        drain_s = await self._drain(old)
        old_ref, old = old.model, None
        if self.settings.gc_freeze:
            gc.unfreeze()  # the old model's objects may be in cycles: collectable again, then the rest frozen anew
            freeze_heap()
        return {"old": old_ref, "new": service.model, "folder": folder, "load_s": round(load_s, 3),
                "drain_s": round(drain_s, 3)}

    async def _drain(self, old: Service) -> float:
        """Wait until no request holds ``old`` (at most ``reload_drain_s``), then stop its batcher."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while old.users > 0 and loop.time() - started < self.settings.reload_drain_s:
            await asyncio.sleep(0.02)
        if old.users > 0:
            log.warning("%d requests still held model %s after %g s; stopping it anyway", old.users,
                        old.model.version, self.settings.reload_drain_s)
        await old.batcher.stop()
        return loop.time() - started

    async def watch(self) -> None:
        """Reload whenever the resolved target of ``model_dir`` changes (``counterpoint promote``/``rollback``)."""
        while True:
            await asyncio.sleep(self.settings.watch_interval_s)
            service: Service | None = self.app.state.service
            target = self.target()
            if service is None or self.busy or target in (service.source, self.failed):
                continue
            log.info("model path %s now leads to %s; reloading", self.settings.model_dir, target)
            try:
                await self.reload()
            except ApiError as exc:
                log.error("automatic reload failed (%s): %s", exc.code, exc.message)
            except Exception as exc:  # the watcher must outlive any one failure
                log.error("automatic reload failed: %s", type(exc).__name__, exc_info=exc)


def create_app(settings: Settings | None = None, predictor: Predictor | None = None) -> FastAPI:
    """Build the app. ``predictor``: an already loaded model (tests, ``run_server``); else the lifespan loads one."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await _start(app, settings, predictor)
        watcher = asyncio.create_task(app.state.reloader.watch(), name="counterpoint-model-watch") \
            if settings.watch_model else None
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with suppress(asyncio.CancelledError):
                    await watcher
            service: Service | None = app.state.service
            app.state.service = None
            app.state.metrics.ready.set(0)
            if service is not None:
                await service.batcher.stop()
            if settings.gc_freeze:
                gc.unfreeze()  # the model and the app may be let go now

    app = FastAPI(
        title="Counterpoint", version=_version(), lifespan=lifespan,
        description="Classifies short posts as extremist, counter_narrative or neutral (English, Urdu, Roman Urdu). "
                    "Errors are JSON `{\"error\": {\"code\", \"message\"}}`; every response names the model version "
                    f"in the `{MODEL_VERSION_HEADER}` header.")
    app.state.settings = settings
    app.state.metrics = ServiceMetrics()
    # Admin keys may do everything API keys may (serving/review checks the admin-only routes).
    app.state.key_checker = KeyChecker([key.get_secret_value() for key in (*settings.api_keys, *settings.admin_keys)])
    app.state.service = None
    app.state.model_version = None
    app.state.reloader = Reloader(app, settings)
    app.state.max_body_bytes = settings.max_body_bytes
    install_error_handlers(app)
    # The last added middleware is the outermost: metrics see (and stamp) the body-limit 413s too.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Inside the key check: a full queue refuses large requests from their Content-Length, before reading them.
    app.add_middleware(QueueAdmissionMiddleware, state=app.state)
    # Outside the body limit and the routes: a caller without a valid key costs no body reading or parsing.
    app.add_middleware(ApiKeyMiddleware, state=app.state)
    app.add_middleware(RequestMetricsMiddleware, metrics=app.state.metrics, state=app.state,
                       header=MODEL_VERSION_HEADER)
    # Outermost: a request's hold on its model ends after everything else, and its header names that model.
    app.add_middleware(ServiceLeaseMiddleware, header=MODEL_VERSION_HEADER)
    app.include_router(v1)
    app.include_router(admin)
    app.include_router(health)
    from serving.review.routes import install_review  # console page, queue, decisions, appeals, export

    install_review(app, [k.get_secret_value() for k in settings.api_keys],
                   [k.get_secret_value() for k in settings.admin_keys])
    return app
