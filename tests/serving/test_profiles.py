"""Threshold profiles and the review band: the folder, the predictor, the API, batch jobs and evaluation."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from serving import labels as L
from serving.artifact import load_meta, update_meta
from serving.predictor import Prediction
from serving.profiles import IMPLICIT, Profile, UnknownProfile, profiles_of, resolve
from tests.helpers import read_jsonl, serve, write_jsonl

TEXTS = ["Join the caravan, brothers; the checkpoint soldiers will taste fear.",
         "My brother was killed at that checkpoint. Tell my mother the killers are lions.",
         "yaar kal match dekhne chalein?"]


def test_trained_folder_ships_profiles_with_a_default(linear_model_dir):
    meta = load_meta(linear_model_dir)
    assert set(meta.profiles) == {"high_recall", "balanced", "high_precision"}
    assert meta.default_profile == "balanced"
    assert meta.thresholds == meta.profiles["balanced"]["thresholds"]
    for prof in meta.profiles.values():
        lo, hi = prof["review_band"] or (0, 0)
        assert 0 <= lo <= hi <= 1
        assert "written_dev" in prof["metrics"] or "real_dev" in prof["metrics"]
    t = {name: p["thresholds"][L.EXTREMIST] for name, p in meta.profiles.items()}
    assert t["high_recall"] <= t["high_precision"]


def test_profiles_order_flags_from_recall_to_precision(linear_predictor):
    probs = linear_predictor.predict_proba(TEXTS * 3)
    flagged = {name: int((probs[:, 0] >= p.thresholds[L.EXTREMIST]).sum())
               for name, p in profiles_of(linear_predictor.meta).items()}
    assert flagged["high_recall"] >= flagged["balanced"] >= flagged["high_precision"]


def test_old_folder_without_profiles_gets_an_implicit_default(tmp_path, linear_model_dir):
    folder = tmp_path / "old"
    shutil.copytree(linear_model_dir, folder)
    update_meta(folder, profiles={}, default_profile=None)
    meta = load_meta(folder)
    assert list(profiles_of(meta)) == [IMPLICIT]
    assert resolve(meta).thresholds == meta.thresholds
    with pytest.raises(UnknownProfile, match="this model has default"):
        resolve(meta, "balanced")


def test_review_band_and_prediction_under_another_profile():
    prof = Profile("p", {L.EXTREMIST: 0.5, L.COUNTER_NARRATIVE: 0.5}, (0.3, 0.7))
    assert prof.review(np.array([0.29, 0.3, 0.69, 0.7])).tolist() == [False, True, True, False]
    pred = Prediction("neutral", {L.EXTREMIST: 0.45, L.COUNTER_NARRATIVE: 0.05, L.NEUTRAL: 0.5}, False, "en")
    strict = pred.under(Profile("s", {L.EXTREMIST: 0.4, L.COUNTER_NARRATIVE: 0.5}, (0.2, 0.6)))
    assert (strict.label, strict.flagged, strict.review) == (L.EXTREMIST, True, True)
    loose = pred.under(Profile("l", {L.EXTREMIST: 0.9, L.COUNTER_NARRATIVE: 0.5}, None))
    assert (loose.label, loose.flagged, loose.review) == (L.NEUTRAL, False, False)


def test_predict_with_a_named_profile_matches_under(linear_predictor):
    meta = linear_predictor.meta
    for name in meta.profiles:
        direct = linear_predictor.predict(TEXTS, name)
        via = [p.under(resolve(meta, name)) for p in linear_predictor.predict(TEXTS)]
        assert [(p.label, p.review) for p in direct] == [(p.label, p.review) for p in via]
    with pytest.raises(UnknownProfile):
        linear_predictor.predict(TEXTS, "nope")


def test_changed_thresholds_change_the_model_identity(tmp_path, linear_model_dir):
    folder = tmp_path / "m"
    shutil.copytree(linear_model_dir, folder)
    before = load_meta(folder).sha256()
    profiles = load_meta(folder).profiles
    profiles["balanced"]["thresholds"][L.EXTREMIST] = 0.99
    update_meta(folder, profiles=profiles)
    assert load_meta(folder).sha256() != before


def test_api_profile_in_request_review_in_results_profiles_in_info(linear_predictor):
    meta = linear_predictor.meta
    with serve(linear_predictor) as client:
        info = client.get("/v1/info").json()
        assert info["default_profile"] == "balanced"
        assert set(info["profiles"]) == set(meta.profiles)
        assert info["profiles"]["balanced"]["review_band"] == meta.profiles["balanced"]["review_band"]
        default = client.post("/v1/classify", json={"texts": TEXTS}).json()["results"]
        assert all("review" in r for r in default)
        for name in meta.profiles:
            got = client.post("/v1/classify", json={"texts": TEXTS, "profile": name}).json()["results"]
            want = linear_predictor.predict(TEXTS, name)
            assert [(r["label"], r["flagged"], r["review"]) for r in got] == [
                (p.label, p.flagged, p.review) for p in want]
            assert [r["scores"] for r in got] == [r["scores"] for r in default]
        bad = client.post("/v1/classify", json={"texts": TEXTS, "profile": "lenient"})
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "unknown_profile"
        assert "balanced" in bad.json()["error"]["message"]


def test_service_default_profile_from_settings(linear_predictor):
    with serve(linear_predictor, profile="high_precision") as client:
        assert client.get("/v1/info").json()["default_profile"] == "high_precision"
        got = client.post("/v1/classify", json={"texts": TEXTS}).json()["results"]
        want = linear_predictor.predict(TEXTS, "high_precision")
        assert [r["label"] for r in got] == [p.label for p in want]


def test_service_refuses_an_unknown_default_profile(linear_predictor):
    from serving.settings import SettingsError

    with pytest.raises(SettingsError, match="COUNTERPOINT_PROFILE"):
        with serve(linear_predictor, profile="nope"):
            pass


def test_label_job_profile_and_review_column(tmp_path, linear_model_dir, linear_predictor):
    from serving.batch import BatchError, run_label_job

    src = write_jsonl(tmp_path / "in.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(TEXTS)])
    run_label_job(src, tmp_path / "out.jsonl", model=linear_model_dir, profile="high_recall", progress=False)
    rows = read_jsonl(tmp_path / "out.jsonl")
    want = linear_predictor.predict(TEXTS, "high_recall")
    assert [(r["pred_label"], r["review"]) for r in rows] == [(p.label, p.review) for p in want]
    with pytest.raises(BatchError, match="unknown profile 'strict'"):
        run_label_job(src, tmp_path / "out2.jsonl", model=linear_model_dir, profile="strict", progress=False)


def test_evaluate_reports_the_user_view_per_profile(tmp_path, linear_predictor, mini_corpus):
    from training.evaluate import evaluate_files

    result = evaluate_files(linear_predictor, [mini_corpus], tmp_path / "eval", plots=False)
    d = result["datasets"][mini_corpus.stem]
    assert d["profile"] == "balanced"
    assert set(d["per_profile"]) == {"high_recall", "balanced", "high_precision"}
    rows = [json.loads(line) for line in mini_corpus.read_text().splitlines()]
    n_neutral = sum(r["label"] == L.NEUTRAL for r in rows)
    probs = linear_predictor.predict_proba([r["text"] for r in rows])
    t = linear_predictor.meta.profiles["balanced"]["thresholds"][L.EXTREMIST]
    flagged_neutral = sum(p[0] >= t for p, r in zip(probs, rows) if r["label"] == L.NEUTRAL)
    assert d["user"]["ordinary_flagged"] == pytest.approx(flagged_neutral / n_neutral)
    # threshold-free ranking of extremist posts, computed by hand: mean precision at each extremist row's rank
    scores = [(p[0], r["label"] == L.EXTREMIST) for p, r in zip(probs, rows)]
    ranked = sorted(scores, key=lambda sc: -sc[0])
    hits, precisions = 0, []
    for k, (_, is_e) in enumerate(ranked, 1):
        if is_e:
            hits += 1
            precisions.append(hits / k)
    assert len({sc for sc, _ in scores}) == len(scores)  # no ties, so the hand computation is exact
    assert d["user"]["extremist_average_precision"] == pytest.approx(sum(precisions) / len(precisions))
    from training.evaluate import extremist_average_precision

    assert extremist_average_precision(np.array([L.LABEL2ID[L.NEUTRAL]] * 3), np.full((3, 3), 1 / 3)) is None
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "ordinary (neutral) posts flagged" in report and "| high_precision |" in report
    assert f"extremist average precision {d['user']['extremist_average_precision']:.3f}" in report
