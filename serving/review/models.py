"""Tables of the review store. Schema changes go through a new Alembic revision in ``migrations/versions``.

``review_items``: one post sent for review (text only when the deployment stores texts, always a keyed hash), the
model's answer that applied (version, scores, thresholds, profile) and the queue state (status, priority, claim).
``review_events``: the append-only trail: decisions, skips, appeals and appeal decisions. Nothing in it is ever
updated or deleted (an ORM hook refuses it); a correction is a new event.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


# Queue states and their priority (higher first): appeals, then disagreements, then the review band, then the rest.
OPEN, DISPUTED, APPEALED, DECIDED = "open", "disputed", "appealed", "decided"
PRIORITY_APPEAL, PRIORITY_DISPUTE, PRIORITY_BAND, PRIORITY_OTHER = 30, 20, 10, 0

DECISION, APPEAL, APPEAL_DECISION, SKIP = "decision", "appeal", "appeal_decision", "skip"


class Item(Base):
    __tablename__ = "review_items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    source_id: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str | None] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    lang: Mapped[str] = mapped_column(String(16), nullable=False)
    model_name: Mapped[str] = mapped_column(String(200), nullable=False)
    model_version: Mapped[str] = mapped_column(String(100), nullable=False)
    predicted_label: Mapped[str] = mapped_column(String(32), nullable=False)
    scores: Mapped[dict] = mapped_column(JSON, nullable=False)
    profile: Mapped[str] = mapped_column(String(64), nullable=False)
    thresholds: Mapped[dict] = mapped_column(JSON, nullable=False)
    review_band: Mapped[list | None] = mapped_column(JSON)
    review: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=OPEN)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    final_label: Mapped[str | None] = mapped_column(String(32))
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claim_expires: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (Index("ix_review_items_queue", "status", "priority", "created_at"),)


class Event(Base):
    __tablename__ = "review_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("review_items.id"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    moderator: Mapped[str] = mapped_column(String(128), nullable=False)
    key_id: Mapped[str | None] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(32))
    agrees_with_model: Mapped[bool | None] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str] = mapped_column(String(100), nullable=False)
    scores: Mapped[dict] = mapped_column(JSON, nullable=False)
    thresholds: Mapped[dict] = mapped_column(JSON, nullable=False)
    profile: Mapped[str] = mapped_column(String(64), nullable=False)
    refers_to: Mapped[int | None] = mapped_column(ForeignKey("review_events.id"))


@event.listens_for(Event, "before_update")
@event.listens_for(Event, "before_delete")
def _append_only(mapper, connection, target) -> None:
    raise RuntimeError("review events are append-only: record a new event instead of changing one")
