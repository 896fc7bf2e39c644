"""`counterpoint feedback export`: decided posts become corpus rows that `counterpoint train --data` accepts."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from serving.review.store import ReviewStore, Scored, Who
from training.cli import app
from training.data import load_many


def scored(text: str, label: str, lang: str = "en") -> Scored:
    return Scored(text=text, lang=lang, label=label, scores={"extremist": 0.6, "counter_narrative": 0.1,
                                                             "neutral": 0.3}, review=True, profile="balanced",
                  thresholds={"extremist": 0.5, "counter_narrative": 0.5}, review_band=[0.4, 0.7],
                  model_name="tiny", model_version="0.0.1", source_id=f"src-{text[:4]}")


def test_export_writes_trainable_corpus_rows_with_provenance(tmp_path, mini_corpus):
    url = f"sqlite:///{tmp_path / 'review.sqlite3'}"
    store = ReviewStore(url, store_texts=True, decisions_needed=2)
    a, b, c = store.enqueue([scored("Join the fight, brothers, the kafir must fall", "extremist"),
                             scored("شہید ہونے والوں کے لیے دعا", "extremist", "ur"),
                             scored("still waiting for a second moderator", "neutral")])
    store.decide(a, Who("ann"), "extremist", "call to fight")
    store.decide(a, Who("bob"), "extremist")
    store.decide(b, Who("ann"), "neutral", "a prayer for the dead")
    store.decide(b, Who("bob"), "counter_narrative")
    store.decide(b, Who("cat"), "neutral", "mourning, not glorifying")
    store.decide(c, Who("ann"), "neutral")  # one of two: not decided yet, not exported
    store.close()

    out = tmp_path / "feedback.jsonl"
    result = CliRunner().invoke(app, ["feedback", "export", "-o", str(out), "--database", url])
    assert result.exit_code == 0, result.output
    assert "wrote 2 decided posts" in result.output and "1 overrode the model" in result.output
    rows = {r["source_id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert set(rows) == {"src-Join", "src-شہید"}
    ur = rows["src-شہید"]
    assert {"id", "text", "label", "lang", "kind", "source", "origin", "source_id", "licence"} <= set(ur)
    assert ur["label"] == "neutral" and ur["lang"] == "ur" and ur["origin"] == "real"
    prov = ur["provenance"]
    assert prov["overridden"] is True and prov["model"]["version"] == "0.0.1" and prov["model_label"] == "extremist"
    assert prov["agreeing_moderators"] == 2 and prov["moderators"] == 3
    assert prov["reasons"] == ["a prayer for the dead", "mourning, not glorifying"]
    assert rows["src-Join"]["provenance"]["overridden"] is False

    examples = load_many([mini_corpus, out])  # the training loader takes it as is, next to the corpus
    assert sum(1 for e in examples if e.file == str(out)) == 2


def test_export_leaves_out_posts_without_stored_text(tmp_path):
    url = f"sqlite:///{tmp_path / 'review.sqlite3'}"
    store = ReviewStore(url, store_texts=False)
    (a,) = store.enqueue([scored("private", "neutral")])
    store.decide(a, Who("ann"), "neutral")
    store.close()
    out = tmp_path / "feedback.jsonl"
    result = CliRunner().invoke(app, ["feedback", "export", "-o", str(out), "--database", url])
    assert result.exit_code == 0 and "wrote 0 decided posts" in result.output
    assert "left out 1" in result.output and out.read_text() == ""
