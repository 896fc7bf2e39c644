"""No decision lost: SIGKILL the service during a burst of decisions; every acknowledged one is in the store."""

from __future__ import annotations

import signal
import threading
import time

import httpx

from serving.review.store import ReviewStore

MODERATORS = 6


def test_every_acknowledged_decision_survives_sigkill(linear_model_dir, database_url, start_service):
    base, proc = start_service(linear_model_dir, database_url=database_url, store_texts="1",
                               review_secret="k" * 32)
    with httpx.Client(base_url=base, timeout=10) as client:
        for start in range(0, 300, 50):
            r = client.post("/v1/review/items", json={"texts": [f"post number {i} about the checkpoint"
                                                                 for i in range(start, start + 50)]})
            assert r.status_code == 200, r.text
    acked: list[dict] = []
    lock = threading.Lock()
    go = threading.Event()

    def moderate(name: str) -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            go.wait()
            try:
                while True:
                    items = client.get("/v1/review/next", params={"moderator": name, "limit": 3}).json()["items"]
                    for item in items:
                        label = ("extremist", "counter_narrative", "neutral")[len(acked) % 3]
                        r = client.post(f"/v1/review/items/{item['id']}/decisions",
                                        json={"label": label, "moderator": name, "reason": "burst"})
                        if r.status_code == 200:  # acknowledged: it must survive
                            with lock:
                                acked.append(r.json())
            except (httpx.TransportError, ValueError, KeyError):
                return  # the service is gone

    threads = [threading.Thread(target=moderate, args=(f"mod{i}",)) for i in range(MODERATORS)]
    for t in threads:
        t.start()
    go.set()
    deadline = time.monotonic() + 60
    while len(acked) < 60 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # mid-burst: requests are in flight
    proc.wait(10)
    for t in threads:
        t.join(30)
    assert len(acked) >= 60, f"only {len(acked)} decisions acknowledged before the deadline"

    store = ReviewStore(database_url, secret="k" * 32, run_migrations=False)
    events = {e["id"]: e for e in store.events()}
    missing = [a for a in acked if a["id"] not in events]
    assert not missing, f"{len(missing)} acknowledged decisions are not in the store"
    for a in acked:
        e = events[a["id"]]
        assert (e["item_id"], e["label"], e["moderator"], e["kind"]) == (a["item_id"], a["label"], a["moderator"],
                                                                        "decision")
        assert store.item(a["item_id"])["status"] == "decided"
    print(f"SIGKILL after {len(acked)} acknowledged decisions: {len(acked)} of {len(acked)} in the store "
          f"({len(events)} events in all)")
    store.close()
