"""Review routes, roles, evidence and the console page through TestClient with the tiny linear model."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from serving import labels as L
from serving.api.app import create_app
from serving.predictor import load_predictor
from serving.settings import load_settings

KEY = "moderator-key-0123456789"
ADMIN = "admin-key-0123456789abcd"
EN = "Join the caravan, brothers; the checkpoint soldiers will taste fear 🔥🔥"
UR = "\u200fشہید ہونے والوں کے لیے دعا کرو، جہاد جاری رہے گا 🤲"


@pytest.fixture(scope="module")
def predictor(linear_model_dir):
    return load_predictor(linear_model_dir)


@contextmanager
def serve(predictor, tmp_path, **overrides):
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'review.sqlite3'}", **overrides)
    with TestClient(create_app(settings, predictor)) as client:
        yield client


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_explain_returns_word_spans_with_offsets_into_the_text_as_sent(predictor, tmp_path):
    with serve(predictor, tmp_path) as client:
        body = client.post("/v1/classify", json={"texts": [EN, UR], "explain": True}).json()
        plain = client.post("/v1/classify", json={"texts": [EN, UR]}).json()
    assert all("evidence" not in r for r in plain["results"])  # only when asked for
    for text, result in zip([EN, UR], body["results"]):
        evidence = result["evidence"]
        assert evidence, result
        assert [e["weight"] for e in evidence] == sorted((e["weight"] for e in evidence), reverse=True)
        for e in evidence:
            assert text[e["start"]:e["end"]] == e["text"] and e["text"].strip() == e["text"]
            assert e["label"] in (L.EXTREMIST, L.COUNTER_NARRATIVE) and e["weight"] > 0
        spans = sorted((e["start"], e["end"]) for e in evidence)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # words never overlap
    # The Urdu text starts with a right-to-left mark that normalisation removes: offsets still index the original.
    assert any(e["start"] > 1 for e in body["results"][1]["evidence"])


def test_explain_has_its_own_limit(predictor, tmp_path):
    with serve(predictor, tmp_path, max_explain_texts=2) as client:
        r = client.post("/v1/classify", json={"texts": ["a b", "c d", "e f"], "explain": True})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_texts"


def test_console_page_is_served(predictor, tmp_path):
    with serve(predictor, tmp_path, api_keys=KEY) as client:
        page = client.get("/")
        js = client.get("/static/console.js")
        css = client.get("/static/console.css")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="queue-item"' in page.text and "/static/console.js" in page.text
    assert js.status_code == 200 and "sessionStorage" in js.text and "Array.from" in js.text
    assert css.status_code == 200 and "Nastaliq" in css.text


def test_queue_decide_appeal_and_export_over_http(predictor, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    secret_text = "a very private post about the checkpoint"
    with serve(predictor, tmp_path, api_keys=KEY, admin_keys=ADMIN, store_texts=True) as client:
        enq = client.post("/v1/review/items", headers=auth(KEY),
                          json={"texts": [secret_text, "second post"], "source_ids": ["p1", "p2"]})
        assert enq.status_code == 200, enq.text
        ids = [i["id"] for i in enq.json()["items"]]
        nxt = client.get("/v1/review/next", headers=auth(KEY), params={"moderator": "ann", "limit": 5}).json()
        assert sorted(i["id"] for i in nxt["items"]) == sorted(ids)
        item = next(i for i in nxt["items"] if i["id"] == ids[0])
        assert item["id"] == ids[0] and item["text"] == secret_text and item["source_id"] == "p1"
        assert item["model"]["version"] == predictor.meta.version and item["thresholds"]
        # bob cannot decide what ann holds
        r = client.post(f"/v1/review/items/{ids[0]}/decisions", headers=auth(KEY),
                        json={"label": "neutral", "moderator": "bob"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "claimed"
        r = client.post(f"/v1/review/items/{ids[0]}/decisions", headers=auth(KEY),
                        json={"label": "neutral", "moderator": "ann", "reason": "news"})
        assert r.status_code == 200 and r.json()["status"] == "decided"
        assert client.post(f"/v1/review/items/{ids[0]}/decisions", headers=auth(KEY),
                           json={"label": "bogus"}).status_code in (409, 422)
        r = client.post(f"/v1/review/items/{ids[0]}/appeals", headers=auth(KEY), json={"reason": "unfair"})
        assert r.status_code == 200 and r.json()["status"] == "appealed"
        r = client.post(f"/v1/review/items/{ids[0]}/decisions", headers=auth(KEY),
                        json={"label": "extremist", "moderator": "ann"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "same_moderator"
        r = client.post(f"/v1/review/items/{ids[0]}/decisions", headers=auth(KEY),
                        json={"label": "neutral", "moderator": "bob", "reason": "agree: news"})
        assert r.json()["kind"] == "appeal_decision"
        # roles: export needs an admin key
        assert client.get("/v1/feedback/export", headers=auth(KEY)).status_code == 403
        assert client.get("/v1/feedback/export").status_code == 401
        export = client.get("/v1/feedback/export", headers=auth(ADMIN))
        assert client.get("/v1/review/stats", headers=auth(ADMIN)).json()["decided"] == 1  # admins review too
        trail = client.get("/v1/admin/review/events", headers=auth(ADMIN)).json()["events"]
    rows = [json.loads(line) for line in export.text.splitlines()]
    assert len(rows) == 1 and rows[0]["text"] == secret_text and rows[0]["label"] == "neutral"
    assert rows[0]["source_id"] == "p1" and rows[0]["provenance"]["agreeing_moderators"] == 2
    assert rows[0]["provenance"]["appealed"] is True and rows[0]["provenance"]["reasons"] == ["news", "agree: news"]
    assert [e["kind"] for e in trail] == ["decision", "appeal", "appeal_decision"]
    assert all(e["key_id"] and KEY not in json.dumps(e) for e in trail)
    assert secret_text not in caplog.text and "second post" not in caplog.text


def test_wrong_label_and_unknown_item_are_clear_errors(predictor, tmp_path):
    with serve(predictor, tmp_path) as client:
        r = client.post("/v1/review/items/nope/decisions", json={"label": "neutral"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        (item,) = client.post("/v1/review/items", json={"texts": ["x y"]}).json()["items"]
        r = client.post(f"/v1/review/items/{item['id']}/decisions", json={"label": "spam"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_label"


def test_review_settings_fail_fast():
    from serving.settings import SettingsError

    with pytest.raises(SettingsError, match="COUNTERPOINT_DATABASE_URL: not a database URL"):
        load_settings(database_url="postgres is over there")
    with pytest.raises(SettingsError, match="COUNTERPOINT_ADMIN_KEYS"):
        load_settings(admin_keys="short")
    assert load_settings(admin_keys="a" * 16).auth_enabled
