"""Decided posts as corpus rows (DESIGN.md "Corpus row"), for retraining: ``counterpoint feedback export``.

Each row carries the moderators' final label and its provenance: the model version whose answer was reviewed,
whether the moderators overrode it, their reasons, how many moderators agreed with the final label, and whether
it went through an appeal. Posts whose text was not stored (``COUNTERPOINT_STORE_TEXTS`` off) cannot become
training rows; they are counted and left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from serving.review.models import APPEAL, APPEAL_DECISION, DECISION
from serving.review.store import ReviewStore

KIND = "moderator_feedback"
SOURCE = "counterpoint_review"


@dataclass
class ExportSummary:
    written: int = 0
    without_text: int = 0
    overridden: int = 0


def feedback_rows(store: ReviewStore, summary: ExportSummary | None = None, *, licence: str = "deployment-internal"
                  ) -> Iterator[dict]:
    summary = summary if summary is not None else ExportSummary()
    for item, events in store.decided():
        if not item["text_available"]:
            summary.without_text += 1
            continue
        final = item["final_label"]
        votes = [e for e in events if e["kind"] in (DECISION, APPEAL_DECISION)]
        overridden = final != item["label"]
        summary.overridden += overridden
        summary.written += 1
        yield {
            "id": f"feedback-{item['id']}", "text": item["text"], "label": final, "lang": item["language"],
            "kind": KIND, "source": SOURCE, "origin": "real", "source_id": item["source_id"] or item["id"],
            "licence": licence,
            "provenance": {
                "model": item["model"], "model_label": item["label"], "model_scores": item["scores"],
                "profile": item["profile"], "thresholds": item["thresholds"], "overridden": overridden,
                "reasons": [e["reason"] for e in votes if e["reason"]],
                "agreeing_moderators": sum(1 for e in votes if e["label"] == final),
                "moderators": len({e["moderator"] for e in votes}),
                "appealed": any(e["kind"] == APPEAL for e in events),
                "decided_at": votes[-1]["created_at"] if votes else None,
            },
        }


def export_feedback(store: ReviewStore, output: str | Path, *, licence: str = "deployment-internal"
                    ) -> ExportSummary:
    """Write every decided post with text to ``output`` (JSONL), atomically (a temp file renamed at the end)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary()
    tmp = output.with_name(output.name + ".part")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in feedback_rows(store, summary, licence=licence):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(output)
    return summary
