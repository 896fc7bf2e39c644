"""Review store: items and the append-only event trail.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_items",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("source_id", sa.String(200)),
        sa.Column("text", sa.Text()),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("lang", sa.String(16), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("predicted_label", sa.String(32), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("review_band", sa.JSON()),
        sa.Column("review", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("final_label", sa.String(32)),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("claim_expires", sa.DateTime()),
    )
    op.create_index("ix_review_items_text_hash", "review_items", ["text_hash"])
    op.create_index("ix_review_items_queue", "review_items", ["status", "priority", "created_at"])
    op.create_table(
        "review_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(32), sa.ForeignKey("review_items.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("moderator", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(16)),
        sa.Column("label", sa.String(32)),
        sa.Column("agrees_with_model", sa.Boolean()),
        sa.Column("reason", sa.Text()),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("refers_to", sa.Integer(), sa.ForeignKey("review_events.id")),
    )
    op.create_index("ix_review_events_item_id", "review_events", ["item_id"])


def downgrade() -> None:
    op.drop_table("review_events")
    op.drop_table("review_items")
