"""The review store: queue items, claims, decisions and appeals on SQLite (default) or PostgreSQL.

Every write is one short transaction that is committed before the caller answers, so an acknowledged decision
survives a killed process (SQLite runs in WAL mode with ``synchronous=FULL``). Claims never hand one item to two
moderators: PostgreSQL picks candidates with ``SELECT ... FOR UPDATE SKIP LOCKED``; on SQLite every transaction
starts with ``BEGIN IMMEDIATE`` (one writer at a time). Both then claim with a conditional ``UPDATE`` (compare and
set on the claim lease), which is what makes the claim safe on any database.

Privacy: the post text is stored only when ``store_texts`` is on; always stored is an HMAC-SHA256 of the text under
a secret key (``COUNTERPOINT_REVIEW_SECRET``; default for a SQLite file: a random key in ``<file>.key``, mode 0600).
Without stored texts, texts live only in a bounded in-memory map so the console can show a claimed post while the
process runs; they are never written to disk or logs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import uuid
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from sqlalchemy import and_, create_engine, event, func, or_, select, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from serving import labels as L
from serving.review.models import (APPEAL, APPEAL_DECISION, APPEALED, DECIDED, DECISION, DISPUTED, OPEN,
                                   PRIORITY_APPEAL, PRIORITY_BAND, PRIORITY_DISPUTE, PRIORITY_OTHER, SKIP, Event,
                                   Item)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SKIP_MEMORY = timedelta(hours=1)  # a skipped item is not offered to the same moderator again for this long


class StoreError(ValueError):
    """A request the store refuses; ``status`` is the HTTP status the API answers with."""

    status = 409
    code = "conflict"

    def __init__(self, message: str, *, status: int = 409, code: str = "conflict"):
        super().__init__(message)
        self.status, self.code = status, code


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC everywhere: same on SQLite and PostgreSQL


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds") + "Z"


@dataclass(frozen=True)
class Who:
    """The moderator behind a request: a name (or the key's id) and the id of the API key used."""

    moderator: str
    key_id: str | None = None


@dataclass(frozen=True)
class Scored:
    """What the model said about a post when it was enqueued."""

    text: str
    lang: str
    label: str
    scores: dict[str, float]
    review: bool
    profile: str
    thresholds: dict[str, float]
    review_band: list[float] | None
    model_name: str
    model_version: str
    source_id: str | None = None

    @classmethod
    def of(cls, text: str, prediction: Any, profile: Any, model_name: str, model_version: str,
           source_id: str | None = None) -> "Scored":
        """What the model said about ``text``: its ``Prediction`` under ``profile`` (a ``serving.profiles.Profile``)."""
        return cls(text=text, lang=prediction.language, label=prediction.label, scores=prediction.scores,
                   review=prediction.review, profile=profile.name, thresholds=dict(profile.thresholds),
                   review_band=list(profile.review_band) if profile.review_band else None,
                   model_name=model_name, model_version=model_version, source_id=source_id)


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000", "foreign_keys=ON"):
                cur.execute(f"PRAGMA {pragma}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock first: no read-then-upgrade races

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _secret_for(url: str, configured: str | None) -> bytes:
    if configured:
        return configured.encode("utf-8")
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return secrets.token_bytes(32)
        key_file = Path(parsed.database + ".key")
        if not key_file.exists():
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return key_file.read_text().strip().encode("utf-8")
    raise ValueError("COUNTERPOINT_REVIEW_SECRET: set a secret (e.g. `openssl rand -hex 32`) to key the text hashes "
                     "of a server database; it must stay the same across restarts")


class _TextCache:
    """Texts of items in memory only (stores without texts): bounded, oldest out first."""

    def __init__(self, size: int = 20_000):
        self._data: OrderedDict[str, str] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def put(self, key: str, text: str) -> None:
        with self._lock:
            self._data[key] = text
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._data.get(key)


class ReviewStore:
    def __init__(self, url: str, *, store_texts: bool = False, secret: str | None = None, lease_s: float = 300.0,
                 decisions_needed: int = 1, run_migrations: bool = True):
        self.url = url
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        if run_migrations:
            migrate(self.engine)
        self.store_texts = store_texts
        self._secret = _secret_for(url, secret)
        self.lease = timedelta(seconds=lease_s)
        self.decisions_needed = decisions_needed
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self._texts = _TextCache()

    def close(self) -> None:
        self.engine.dispose()

    # -- helpers ---------------------------------------------------------------------------------------------------
    def text_hash(self, text: str) -> str:
        return hmac.new(self._secret, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def _txn(self) -> Session:
        return self._session.begin()

    def _locked_item(self, session: Session, item_id: str) -> Item:
        stmt = select(Item).where(Item.id == item_id)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        item = session.scalars(stmt).first()
        if item is None:
            raise StoreError(f"no review item {item_id!r}", status=404, code="not_found")
        return item

    def text_of(self, item: Item) -> str | None:
        return item.text if item.text is not None else self._texts.get(item.id)

    # -- enqueue ---------------------------------------------------------------------------------------------------
    def enqueue(self, posts: Iterable[Scored]) -> list[str]:
        now, ids = utcnow(), []
        with self._session() as session, session.begin():
            for n, post in enumerate(posts):
                item_id = uuid.uuid4().hex
                session.add(Item(  # a microsecond apart: the queue keeps the order posts were sent in
                    id=item_id, created_at=now + timedelta(microseconds=n), source_id=post.source_id,
                    text=post.text if self.store_texts else None, text_hash=self.text_hash(post.text),
                    lang=post.lang, model_name=post.model_name, model_version=post.model_version,
                    predicted_label=post.label, scores=post.scores, profile=post.profile,
                    thresholds=post.thresholds, review_band=post.review_band, review=post.review, status=OPEN,
                    priority=PRIORITY_BAND if post.review else PRIORITY_OTHER))
                if not self.store_texts:
                    self._texts.put(item_id, post.text)
                ids.append(item_id)
        return ids

    # -- the queue -------------------------------------------------------------------------------------------------
    def _deciders(self, session: Session, item_id: str) -> set[str]:
        rows = session.scalars(select(Event.moderator).where(
            Event.item_id == item_id, Event.kind.in_((DECISION, APPEAL_DECISION))))
        return set(rows)

    def claim(self, who: Who, limit: int = 1) -> list[dict]:
        """Claim up to ``limit`` open items for ``who``: appeals first, then disagreements, then the review band,
        oldest first; never one this moderator decided or recently skipped, never one another moderator holds."""
        now = utcnow()
        claimed: list[str] = []
        with self._session() as session, session.begin():
            mine = select(Event.item_id).where(Event.moderator == who.moderator, or_(
                Event.kind.in_((DECISION, APPEAL_DECISION)),
                and_(Event.kind == SKIP, Event.created_at > now - SKIP_MEMORY)))
            free = or_(Item.claim_expires.is_(None), Item.claim_expires < now, Item.claimed_by == who.moderator)
            stmt = (select(Item.id).where(Item.status != DECIDED, free, Item.id.not_in(mine))
                    .order_by(Item.priority.desc(), Item.created_at, Item.id).limit(limit))
            if self.dialect == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            for item_id in session.scalars(stmt).all():
                done = session.execute(
                    update(Item).where(Item.id == item_id, free)
                    .values(claimed_by=who.moderator, claim_expires=now + self.lease)
                    .execution_options(synchronize_session=False))
                if done.rowcount == 1:  # compare-and-set: another moderator may have won the race
                    claimed.append(item_id)
        return [self.item(i) for i in claimed]

    def release(self, item_id: str, who: Who, *, skip: bool = True) -> None:
        with self._session() as session, session.begin():
            item = self._locked_item(session, item_id)
            if item.claimed_by == who.moderator:
                item.claimed_by, item.claim_expires = None, None
            if skip:
                session.add(self._event(item, SKIP, who, None, None, None))

    # -- decisions and appeals ---------------------------------------------------------------------------------
    @staticmethod
    def _event(item: Item, kind: str, who: Who, label: str | None, reason: str | None, refers_to: int | None
               ) -> Event:
        return Event(item_id=item.id, kind=kind, created_at=utcnow(), moderator=who.moderator, key_id=who.key_id,
                     label=label, agrees_with_model=None if label is None else label == item.predicted_label,
                     reason=reason, model_version=item.model_version, scores=item.scores,
                     thresholds=item.thresholds, profile=item.profile, refers_to=refers_to)

    def decide(self, item_id: str, who: Who, label: str, reason: str | None = None) -> dict:
        """Record a decision (or, on an appealed item, the appeal decision) and update the queue state."""
        if label not in L.LABEL2ID:
            raise StoreError(f"label {label!r} is not one of {', '.join(L.LABELS)}", status=422,
                             code="invalid_label")
        now = utcnow()
        with self._session() as session, session.begin():
            item = self._locked_item(session, item_id)
            if item.claimed_by not in (None, who.moderator) and item.claim_expires and item.claim_expires > now:
                raise StoreError(f"item {item_id} is claimed by another moderator until {iso(item.claim_expires)}",
                                 code="claimed")
            if item.status == DECIDED:
                raise StoreError(f"item {item_id} is already decided; appeal the decision to change it",
                                 code="already_decided")
            deciders = self._deciders(session, item.id)
            if item.status == APPEALED:
                appeal = session.scalars(select(Event).where(Event.item_id == item.id, Event.kind == APPEAL)
                                         .order_by(Event.id.desc())).first()
                if who.moderator in deciders:
                    raise StoreError("an appeal must be decided by a moderator who has not decided this post",
                                     status=403, code="same_moderator")
                ev = self._event(item, APPEAL_DECISION, who, label, reason, appeal.id if appeal else None)
                item.status, item.final_label, item.priority = DECIDED, label, PRIORITY_OTHER
            else:
                if who.moderator in deciders:
                    raise StoreError(f"{who.moderator} already decided item {item_id}", code="already_decided_by_you")
                ev = self._event(item, DECISION, who, label, reason, None)
                labels = [e.label for e in session.scalars(select(Event).where(
                    Event.item_id == item.id, Event.kind == DECISION))] + [label]
                counts = Counter(labels).most_common()
                top, n = counts[0]
                unique_top = len(counts) == 1 or counts[1][1] < n
                if n >= self.decisions_needed and unique_top:
                    item.status, item.final_label, item.priority = DECIDED, top, PRIORITY_OTHER
                elif len(counts) > 1:
                    item.status, item.priority = DISPUTED, PRIORITY_DISPUTE  # moderators disagree: next in line
            session.add(ev)
            item.claimed_by, item.claim_expires = None, None
            session.flush()
            result = self._event_dict(ev) | {"status": item.status, "final_label": item.final_label}
        return result

    def appeal(self, item_id: str, who: Who, reason: str) -> dict:
        with self._session() as session, session.begin():
            item = self._locked_item(session, item_id)
            if item.status != DECIDED:
                raise StoreError(f"item {item_id} is {item.status}; only decided posts can be appealed",
                                 code="not_decided")
            last = session.scalars(select(Event).where(
                Event.item_id == item.id, Event.kind.in_((DECISION, APPEAL_DECISION)))
                .order_by(Event.id.desc())).first()
            ev = self._event(item, APPEAL, who, None, reason, last.id if last else None)
            session.add(ev)
            item.status, item.priority = APPEALED, PRIORITY_APPEAL
            item.claimed_by, item.claim_expires = None, None
            session.flush()
            return self._event_dict(ev) | {"status": item.status}

    # -- reading ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _event_dict(ev: Event) -> dict:
        return {"id": ev.id, "item_id": ev.item_id, "kind": ev.kind, "created_at": iso(ev.created_at),
                "moderator": ev.moderator, "key_id": ev.key_id, "label": ev.label,
                "agrees_with_model": ev.agrees_with_model, "reason": ev.reason, "model_version": ev.model_version,
                "scores": ev.scores, "thresholds": ev.thresholds, "profile": ev.profile, "refers_to": ev.refers_to}

    def _item_dict(self, item: Item, events: list[Event]) -> dict:
        text = self.text_of(item)
        return {"id": item.id, "created_at": iso(item.created_at), "source_id": item.source_id, "text": text,
                "text_available": text is not None, "text_hash": item.text_hash, "language": item.lang,
                "model": {"name": item.model_name, "version": item.model_version},
                "label": item.predicted_label, "scores": item.scores, "flagged": item.predicted_label == L.FLAG_LABEL,
                "review": item.review, "profile": item.profile, "thresholds": item.thresholds,
                "review_band": item.review_band, "status": item.status, "priority": item.priority,
                "final_label": item.final_label, "claimed_by": item.claimed_by,
                "claim_expires": iso(item.claim_expires), "events": [self._event_dict(e) for e in events]}

    def item(self, item_id: str) -> dict:
        with self._session() as session:
            item = session.get(Item, item_id)
            if item is None:
                raise StoreError(f"no review item {item_id!r}", status=404, code="not_found")
            events = list(session.scalars(select(Event).where(Event.item_id == item_id).order_by(Event.id)))
            return self._item_dict(item, events)

    def stats(self) -> dict[str, int]:
        with self._session() as session:
            rows = session.execute(select(Item.status, func.count()).group_by(Item.status)).all()
            counts = {OPEN: 0, DISPUTED: 0, APPEALED: 0, DECIDED: 0} | {s: int(n) for s, n in rows}
            counts["events"] = int(session.scalar(select(func.count()).select_from(Event)) or 0)
            return counts

    def events(self) -> list[dict]:
        with self._session() as session:
            return [self._event_dict(e) for e in session.scalars(select(Event).order_by(Event.id))]

    def decided(self, batch: int = 500) -> Iterator[tuple[dict, list[dict]]]:
        """Every decided item with its trail, oldest first (for export)."""
        with self._session() as session:
            last = ""
            while True:
                items = list(session.scalars(select(Item).where(Item.status == DECIDED, Item.id > last)
                                             .order_by(Item.id).limit(batch)))
                if not items:
                    return
                ids = [i.id for i in items]
                events: dict[str, list[Event]] = {i: [] for i in ids}
                for ev in session.scalars(select(Event).where(Event.item_id.in_(ids)).order_by(Event.id)):
                    events[ev.item_id].append(ev)
                for item in items:
                    yield self._item_dict(item, events[item.id]), [self._event_dict(e) for e in events[item.id]]
                last = ids[-1]


def open_store(settings: Any) -> ReviewStore:
    """The store for the service's settings (``COUNTERPOINT_DATABASE_URL`` and friends)."""
    secret = settings.review_secret.get_secret_value() if settings.review_secret else None
    return ReviewStore(settings.database_url, store_texts=settings.store_texts, secret=secret,
                       lease_s=settings.review_lease_s, decisions_needed=settings.review_decisions)
