"""Service settings: typed, read once at start-up from ``COUNTERPOINT_*`` environment variables, failing fast.

Every value has a default that serves ``models/default`` on 127.0.0.1:8000. ``load_settings`` turns a bad value
into one ``SettingsError`` (a ``ValueError``, so the CLI prints it without a traceback) naming the variable and
what it accepts. ``COUNTERPOINT_API_KEYS`` is a comma-separated list; when it is empty the API is open.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from serving.predictor import BACKENDS

ENV_PREFIX = "COUNTERPOINT_"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class SettingsError(ValueError):
    """A setting that cannot be used, with the environment variable to fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True,
                                      protected_namespaces=())

    model_dir: Path = Path("models/default")
    backend: str = "auto"
    # Threshold profile used when a request names none (None: the model folder's default profile).
    profile: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    # Limits (a request over them gets 413 naming the limit).
    max_texts_per_request: int = Field(64, ge=1, le=10_000)
    max_chars_per_text: int = Field(10_000, ge=1, le=1_000_000)
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)

    # Micro-batcher: a batch closes at max_batch_size texts or max_wait_ms after its first request arrived. Under
    # load, batches fill while the previous one runs, so a long wait buys little: 1 ms gave the same saturated
    # throughput as 4 ms and ~4 ms lower latency at moderate load (bench/load.py, 2 cores).
    max_batch_size: int = Field(32, ge=1, le=1024)
    max_wait_ms: float = Field(1.0, ge=0, le=1000)
    # The predictor sorts each micro-batch by token count and runs it in chunks of this many texts: small chunks of
    # similar length waste little on padding (on 2 CPU cores, chunks of 2-4 ran ~1.8x faster than one padded chunk
    # of 12-16 random posts).
    model_batch_size: int = Field(4, ge=1, le=256)
    # Texts waiting for the model; a request that would overflow it gets 429.
    queue_size: int = Field(1024, ge=1)
    # Cost is counted in tokens (summed over a text's windows, as text-embeddings-inference counts
    # max_batch_tokens): characters say little about model time, windows do. A batch holds at most
    # max_batch_tokens (one text over it runs alone), so a short post never waits behind more than one such batch;
    # the queue holds at most queue_tokens (else 429); one request may cost at most max_tokens_per_request and one
    # text at most max_windows_per_text windows (else 413).
    max_batch_tokens: int = Field(2048, ge=16, le=1_000_000)
    queue_tokens: int = Field(262_144, ge=16)
    max_tokens_per_request: int = Field(65_536, ge=16)
    max_windows_per_text: int = Field(32, ge=1, le=10_000)
    request_timeout_s: float = Field(30.0, gt=0, le=3600)

    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    # Admin keys may do everything an API key may, and also export feedback and manage (serving/review).
    admin_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    log_texts: bool = False
    # Review store (serving/review): SQLAlchemy URL; default a SQLite file under var/. Post text is kept only when
    # store_texts is true; otherwise an HMAC of it under review_secret (default: a key file beside the SQLite file).
    database_url: str = "sqlite:///var/review.sqlite3"
    store_texts: bool = False
    review_secret: SecretStr | None = None
    # A moderator's claim on a queue item lasts this long; moderators needed per post (2+: double review).
    review_lease_s: float = Field(300.0, gt=0, le=86_400)
    review_decisions: int = Field(1, ge=1, le=10)
    # "explain": true costs one model call per word (serving/explain.py): fewer texts per request.
    max_explain_texts: int = Field(16, ge=1, le=1024)
    log_level: str = "info"
    # ONNX Runtime intra-op threads; None uses every core.
    threads: int | None = Field(None, ge=1, le=256)
    # Once the model is loaded, put the objects alive then out of the garbage collector's reach (gc.freeze): a full
    # collection of them took 20-40 ms with no request moving (serving/api/app.py ``freeze_heap``). The test suite
    # turns it off (each app start would collect the whole test process first).
    gc_freeze: bool = True
    # Hot swap (POST /v1/admin/reload loads model_dir again; issue 12). With watch_model the service also polls the
    # resolved target of model_dir (the models/default symlink that `counterpoint promote`/`rollback` switch) every
    # watch_interval_s seconds and reloads when it changes. An old model is stopped once its requests are done, or
    # after reload_drain_s at the latest.
    watch_model: bool = False
    watch_interval_s: float = Field(5.0, gt=0, le=3600)
    reload_drain_s: float = Field(60.0, gt=0, le=3600)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in BACKENDS:
            raise ValueError(f"unknown backend {value!r}; choose one of {', '.join(BACKENDS)}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _known_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.lower()
            if value not in LOG_LEVELS:
                raise ValueError(f"unknown log level {value!r}; choose one of {', '.join(LOG_LEVELS)}")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value)
        except ArgumentError:
            # The value is not echoed: a URL may hold a password.
            raise ValueError("not a database URL; use e.g. sqlite:///var/review.sqlite3 or "
                             "postgresql+psycopg://user@host:5432/db") from None
        return value

    @field_validator("api_keys", "admin_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("api_keys", "admin_keys")
    @classmethod
    def _long_enough(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for key in value:
            if len(key.get_secret_value()) < 16:
                raise ValueError("every API key must be at least 16 characters long (use e.g. `openssl rand -hex 24`)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        if self.max_texts_per_request > self.queue_size:
            raise ValueError(f"queue_size ({self.queue_size}) must be at least max_texts_per_request "
                             f"({self.max_texts_per_request}), or no full request could ever be queued")
        if self.max_tokens_per_request > self.queue_tokens:
            raise ValueError(f"queue_tokens ({self.queue_tokens}) must be at least max_tokens_per_request "
                             f"({self.max_tokens_per_request}), or no full request could ever be queued")
        return self

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys or self.admin_keys)

    def limits(self) -> dict[str, Any]:
        """The limits a client needs to know, as served by ``/v1/info``."""
        return {"max_texts_per_request": self.max_texts_per_request, "max_chars_per_text": self.max_chars_per_text,
                "max_body_bytes": self.max_body_bytes, "max_batch_size": self.max_batch_size,
                "model_batch_size": self.model_batch_size, "max_wait_ms": self.max_wait_ms,
                "queue_size": self.queue_size, "request_timeout_s": self.request_timeout_s,
                "max_batch_tokens": self.max_batch_tokens, "queue_tokens": self.queue_tokens,
                "max_tokens_per_request": self.max_tokens_per_request,
                "max_windows_per_text": self.max_windows_per_text}


_CLI_FLAGS = {"model_dir": "--model", "host": "--host", "port": "--port", "backend": "--backend"}


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in err["loc"])
        name = f"{ENV_PREFIX}{field.upper()}" if field else "settings"
        if field in _CLI_FLAGS:
            name += f" (or {_CLI_FLAGS[field]})"
        message = err["msg"].removeprefix("Value error, ")
        problems.append(f"{name}: {message}")
    return "invalid settings: " + "; ".join(problems)


def load_settings(**overrides: Any) -> Settings:
    """Read the environment once, apply explicit overrides (``None`` means "not given"), and validate."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def environment_summary() -> dict[str, str]:
    """The ``COUNTERPOINT_*`` variables that are set (API keys masked), for start-up logs."""
    secret = {f"{ENV_PREFIX}API_KEYS", f"{ENV_PREFIX}ADMIN_KEYS", f"{ENV_PREFIX}REVIEW_SECRET",
              f"{ENV_PREFIX}DATABASE_URL"}
    return {key: ("***" if key in secret else value)
            for key, value in sorted(os.environ.items()) if key.startswith(ENV_PREFIX)}
