"""The review store on SQLite and PostgreSQL: queue order, claims, decisions, appeals, privacy, concurrency."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text

from serving.review.models import Event
from serving.review.store import ReviewStore, Scored, StoreError, Who

SCORES = {"extremist": 0.55, "counter_narrative": 0.15, "neutral": 0.30}


def post(text: str, review: bool = False, label: str = "extremist") -> Scored:
    return Scored(text=text, lang="en", label=label, scores=SCORES, review=review, profile="balanced",
                  thresholds={"extremist": 0.5, "counter_narrative": 0.5}, review_band=[0.4, 0.7],
                  model_name="tiny", model_version="1.2.3", source_id=None)


def make(url: str, **kw) -> ReviewStore:
    return ReviewStore(url, secret="s" * 32, **kw)


def test_decision_records_who_when_model_and_thresholds(database_url):
    store = make(database_url, store_texts=True)
    (item_id,) = store.enqueue([post("kill them all")])
    claimed = store.claim(Who("ann", "k1"))
    assert [i["id"] for i in claimed] == [item_id] and claimed[0]["text"] == "kill them all"
    out = store.decide(item_id, Who("ann", "k1"), "neutral", "quoting a news report")
    assert out["status"] == "decided" and out["final_label"] == "neutral"
    ev = store.item(item_id)["events"][0]
    assert ev["moderator"] == "ann" and ev["key_id"] == "k1" and ev["created_at"].endswith("Z")
    assert ev["model_version"] == "1.2.3" and ev["scores"] == SCORES and ev["profile"] == "balanced"
    assert ev["thresholds"] == {"extremist": 0.5, "counter_narrative": 0.5} and ev["agrees_with_model"] is False
    assert ev["reason"] == "quoting a news report"
    with pytest.raises(StoreError, match="already decided"):
        store.decide(item_id, Who("bob"), "extremist")
    store.close()


def test_queue_puts_appeals_then_disagreements_then_the_review_band_first(database_url):
    store = make(database_url, store_texts=True, decisions_needed=2)
    plain, band, disputed, appealed = store.enqueue([post("plain"), post("band", review=True), post("disputed"),
                                                     post("appealed")])
    store.decide(disputed, Who("ann"), "extremist")
    store.decide(disputed, Who("bob"), "neutral")
    store.decide(appealed, Who("ann"), "extremist")
    store.decide(appealed, Who("bob"), "extremist")
    store.appeal(appealed, Who("poster"), "it is satire")
    order = [i["id"] for i in store.claim(Who("cat"), limit=10)]
    assert order == [appealed, disputed, band, plain]
    # Moderators who decided an item are not offered it again; ann decided `disputed` and `appealed`.
    store2 = [i["id"] for i in store.claim(Who("ann"), limit=10)]
    assert store2 == []  # cat holds band and plain; ann decided the other two
    store.close()


def test_appeal_goes_to_a_different_moderator_and_the_trail_is_append_only(database_url):
    store = make(database_url, store_texts=True)
    (item_id,) = store.enqueue([post("a post")])
    store.decide(item_id, Who("ann"), "extremist", "call to violence")
    store.appeal(item_id, Who("poster"), "it was a quote")
    with pytest.raises(StoreError) as refused:
        store.decide(item_id, Who("ann"), "neutral")
    assert refused.value.status == 403
    assert [i["id"] for i in store.claim(Who("ann"))] == []  # the appeal is not offered to ann
    assert [i["id"] for i in store.claim(Who("bob"))] == [item_id]
    out = store.decide(item_id, Who("bob"), "neutral", "news quote")
    assert out["kind"] == "appeal_decision" and out["status"] == "decided" and out["final_label"] == "neutral"
    kinds = [(e["kind"], e["moderator"], e["label"]) for e in store.item(item_id)["events"]]
    assert kinds == [("decision", "ann", "extremist"), ("appeal", "poster", None),
                     ("appeal_decision", "bob", "neutral")]
    with store._session() as session, pytest.raises(RuntimeError, match="append-only"):
        ev = session.scalars(select(Event)).first()
        ev.label = "neutral"
        session.commit()
    store.close()


def test_texts_are_not_stored_unless_allowed(database_url):
    store = make(database_url, store_texts=False)
    (item_id,) = store.enqueue([post("a secret post text")])
    with store.engine.connect() as conn:
        dump = " ".join(str(row) for row in conn.execute(text("select * from review_items")))
    assert "secret post text" not in dump
    assert store.text_hash("a secret post text") in dump  # a keyed hash instead
    assert store.item(item_id)["text"] == "a secret post text"  # memory only, for the console while it runs
    other = make(database_url, store_texts=False, run_migrations=False)
    assert other.item(item_id)["text"] is None and other.item(item_id)["text_available"] is False
    assert make(database_url, run_migrations=False).text_hash("x") == store.text_hash("x")  # same secret, same hash
    store.close()
    other.close()


def test_migrations_are_idempotent(database_url):
    make(database_url).close()
    make(database_url).close()


def test_concurrent_moderators_never_get_the_same_item(database_url):
    """8 moderators pull and decide at once until the queue is empty: every post goes to exactly one of them."""
    store = make(database_url, store_texts=True)
    ids = store.enqueue([post(f"post {i}") for i in range(48)])
    got: dict[str, list[str]] = {}
    errors: list[Exception] = []
    barrier = threading.Barrier(8)

    def moderate(name: str) -> None:
        barrier.wait()
        mine = []
        try:
            while batch := store.claim(Who(name), limit=2):
                for item in batch:
                    mine.append(item["id"])
                    store.decide(item["id"], Who(name), "neutral")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        got[name] = mine

    threads = [threading.Thread(target=moderate, args=(f"mod{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    claimed = [i for mine in got.values() for i in mine]
    assert sorted(claimed) == sorted(ids), "an item went to two moderators, or was never handed out"
    assert store.stats()["decided"] == 48 and store.stats()["events"] == 48
    store.close()


def test_postgres_claims_skip_rows_locked_by_another_transaction(postgres_url):
    """SELECT ... FOR UPDATE SKIP LOCKED: a row another moderator's transaction holds is passed over, not waited on."""
    import time

    from sqlalchemy import create_engine

    store = make(postgres_url, store_texts=True)
    first, second = store.enqueue([post("first"), post("second")])
    other = create_engine(postgres_url)
    with other.connect() as conn:
        trans = conn.begin()
        conn.execute(text("SELECT id FROM review_items WHERE id = :id FOR UPDATE"), {"id": first})
        started = time.monotonic()
        claimed = [i["id"] for i in store.claim(Who("ann"))]
        waited = time.monotonic() - started
        trans.rollback()
    other.dispose()
    assert claimed == [second] and waited < 2.0
    assert [i["id"] for i in store.claim(Who("bob"))] == [first]  # free again once the lock is gone
    store.close()
