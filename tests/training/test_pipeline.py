"""End-to-end: train -> folder -> verified load -> predict, for both model kinds, plus tamper refusal."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from serving import labels as L
from serving.artifact import ModelFolderError, load_meta, read_meta
from serving.predictor import load_predictor

TEXTS = ["Police said the blast near the market killed three people.",
         "ye log kab sudhrenge yaar, sab ko pata hai",
         "شہید ہونے والوں کے لیے دعا",
         "join the caravan brothers, inbox me"]


def test_transformer_folder_is_complete_and_self_describing(transformer_model_dir):
    names = {p.name for p in transformer_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "model.onnx", "model.int8.onnx",
            "model_meta.json", "README.md", "eval"} <= names
    meta = load_meta(transformer_model_dir)
    assert meta.labels == list(L.LABELS) and meta.kind == "transformer" and meta.base_model == "minilm"
    assert meta.training_config["train"]["max_steps"] == 4
    assert set(meta.thresholds) == {L.EXTREMIST, L.COUNTER_NARRATIVE} and meta.temperature > 0
    assert meta.onnx["parity"]["n"] > 0 and "argmax_agreement" in meta.onnx["parity"]
    assert meta.metrics["test"]["n"] > 0 and "per_lang" in meta.metrics["test"]
    # Parity reads the served graph's test scores from the test evaluation (scored once): the same decisions
    assert meta.onnx["parity"]["macro_f1"] == pytest.approx(meta.metrics["test"]["macro_f1"], abs=1e-12)
    assert all(v for v in meta.data["files"].values())
    card = (transformer_model_dir / "README.md").read_text()
    assert "Intended use" in card and "Limitations" in card and "| language |" in card
    metrics = json.loads((transformer_model_dir / "eval" / "metrics.json").read_text())
    assert set(metrics["datasets"]) == {"test", "dev"}


def test_folder_loads_with_transformers_pipeline(transformer_model_dir):
    from transformers import pipeline

    clf = pipeline("text-classification", model=str(transformer_model_dir))
    out = clf(TEXTS[0])
    assert out[0]["label"] in L.LABELS


def test_backends_agree(transformer_model_dir):
    torch_p = load_predictor(transformer_model_dir, "torch")
    fp32 = load_predictor(transformer_model_dir, "onnx")
    int8 = load_predictor(transformer_model_dir, "onnx-int8")
    p_t, p_f, p_q = (p.predict_proba(TEXTS) for p in (torch_p, fp32, int8))
    assert np.abs(p_t - p_f).max() < 1e-4  # same graph, fp32
    assert np.abs(p_t - p_q).max() < 0.05  # int8 weights and activations
    assert int8.backend == "onnx-int8" and load_predictor(transformer_model_dir).backend == "onnx-int8"


def test_torch_bf16_backend_follows_torch_or_is_refused_with_a_clear_message(transformer_model_dir, monkeypatch):
    import torch

    import serving.predictor as predictor_module

    native = predictor_module.native_bf16()
    with monkeypatch.context() as m:  # a CPU without native bfloat16 gets the refusal, before any weights are read
        m.setattr(predictor_module, "native_bf16", lambda: False)
        m.setattr("transformers.AutoModelForSequenceClassification.from_pretrained",
                  lambda *a, **k: pytest.fail("weights read for a refused backend"))
        with pytest.raises(ModelFolderError, match="native bfloat16.*choose onnx-int8, onnx or torch"):
            load_predictor(transformer_model_dir, "torch-bf16")
    if not native:
        pytest.skip("this CPU has no native bfloat16: the bfloat16 path itself is not run here")
    exact = load_predictor(transformer_model_dir, "torch")
    bf16 = load_predictor(transformer_model_dir, "torch-bf16")
    assert bf16.backend == "torch-bf16" and bf16.model.dtype == torch.bfloat16
    assert exact.model.dtype == torch.float32  # the two predictors hold their own weights
    p_t, p_b = exact.predict_proba(TEXTS), bf16.predict_proba(TEXTS)
    assert p_b.dtype == np.float64 and np.allclose(p_b.sum(axis=1), 1.0)
    assert 0 < np.abs(p_t - p_b).max() < 0.05  # rounded (8 bits of mantissa), yet close
    # Model chunks are padded to multiples of 16 tokens (bounded oneDNN shapes, bounded memory); the padding is
    # masked, so scores barely move against chunks padded only to their longest window.
    widths = []
    run = bf16._run
    monkeypatch.setattr(bf16, "_run", lambda ids, mask: widths.append(ids.shape[1]) or run(ids, mask))
    p_padded = bf16.predict_proba(TEXTS)
    assert widths and all(w % predictor_module.BF16_PAD_MULTIPLE == 0 or w == bf16.max_length for w in widths)
    monkeypatch.setattr(bf16, "pad_multiple", 1)
    assert np.abs(bf16.predict_proba(TEXTS) - p_padded).max() < 0.02
    assert np.array_equal(p_padded, p_b)


def test_torch_weights_from_a_folder_load_and_run_on_one_thread_whoever_calls(transformer_model_dir, monkeypatch):
    """A service loads on its main thread and predicts on its model thread: two OpenMP teams on two cores made a
    one-post forward pass 1.9x slower, so every forward pass of folder weights goes to the one torch thread."""
    import os
    import select
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from transformers import AutoModelForSequenceClassification

    import serving.predictor as predictor_module

    seen = []
    forward = predictor_module.TorchPredictor._forward
    monkeypatch.setattr(predictor_module.TorchPredictor, "_forward",
                        lambda self, *a: seen.append(threading.current_thread().name) or forward(self, *a))
    loaded = load_predictor(transformer_model_dir, "torch")
    p_main = loaded.predict_proba(TEXTS)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="model") as pool:
        p_pool = pool.submit(loaded.predict_proba, TEXTS).result()
    np.testing.assert_array_equal(p_main, p_pool)
    assert seen and {name.rsplit("_", 1)[0] for name in seen} == {"counterpoint-torch"}
    # a model handed over runs where its caller is
    seen.clear()
    model = AutoModelForSequenceClassification.from_pretrained(transformer_model_dir)
    given = predictor_module.TorchPredictor(transformer_model_dir, loaded.meta, model=model)
    np.testing.assert_allclose(given.predict_proba(TEXTS), p_main, atol=1e-6)
    assert seen == [threading.current_thread().name] * len(seen) and seen
    # a forked child (a batch engine's worker) starts its own torch thread instead of waiting on the parent's
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, predictor_module.on_torch_thread(lambda: threading.current_thread().name).encode())
        finally:
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 30)
    if not ready:
        os.kill(pid, 9)
    os.waitpid(pid, 0)
    answer = os.read(read, 200).decode() if ready else ""
    os.close(read)
    assert answer.startswith("counterpoint-torch"), "the forked child's call on the torch thread never returned"


def test_torch_weights_are_stored_once_in_fp16_and_read_back_as_fp32(transformer_model_dir, tmp_path):
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForSequenceClassification

    from training.config import load_config

    assert load_config(None).export.torch_weights == "fp16"
    with safe_open(str(transformer_model_dir / "model.safetensors"), framework="pt") as f:
        stored = {k: f.get_tensor(k) for k in f.keys()}
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    assert json.loads((transformer_model_dir / "config.json").read_text())["dtype"] == "float32"
    model = AutoModelForSequenceClassification.from_pretrained(transformer_model_dir)
    assert model.dtype == torch.float32
    for name, value in model.state_dict().items():  # exactly the stored numbers, widened
        if name in stored and value.is_floating_point():
            assert torch.equal(value, stored[name].float()), name


def test_rounding_to_fp16_changes_nothing_a_second_time():
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from training.finetune import fp16_state_dict, round_to_fp16

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=32, num_labels=3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    round_to_fp16(model)
    after = model.state_dict()
    changed = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])]
    assert changed and all(torch.allclose(before[k], after[k], rtol=1e-3, atol=1e-4) for k in changed)
    assert all(torch.equal(v.float(), after[k]) for k, v in fp16_state_dict(model).items() if v.is_floating_point())
    assert all(v.dtype == after[k].dtype for k, v in before.items())  # still fp32 (and integer buffers integer)


def test_batch_and_single_predictions_agree(transformer_model_dir, linear_model_dir):
    for folder, backend, tol in ((transformer_model_dir, "onnx", 1e-5), (transformer_model_dir, "onnx-int8", 0.02),
                                 (linear_model_dir, "linear", 1e-9)):
        p = load_predictor(folder, backend)
        batch = p.predict_proba(TEXTS)
        single = np.vstack([p.predict_proba([t]) for t in TEXTS])
        assert np.abs(batch - single).max() < tol, backend


def test_long_text_is_scored_by_its_most_extreme_window(transformer_model_dir):
    p = load_predictor(transformer_model_dir, "onnx")
    long_text = " ".join(TEXTS * 40)
    windows, owner = p.windows([long_text])
    assert len(windows) > 3 and all(len(w) <= p.max_length for w in windows)
    from serving.predictor import softmax

    per_window = softmax(p._window_logits(windows), p.meta.temperature)
    expected = per_window[per_window[:, L.LABEL2ID[L.EXTREMIST]].argmax()]
    got = p.predict_proba([long_text])[0]
    assert np.allclose(got, expected, atol=1e-6)


def test_predictions_follow_the_schema(linear_model_dir):
    p = load_predictor(linear_model_dir)
    for pred in p.predict(TEXTS):
        assert pred.label in L.LABELS and set(pred.scores) == set(L.LABELS)
        assert abs(sum(pred.scores.values()) - 1) < 1e-4
        assert pred.flagged == (pred.label == L.FLAG_LABEL)
    assert [x.language for x in p.predict(TEXTS)] == ["en", "roman_ur", "ur", "en"]


def test_linear_training_is_reproducible(linear_model_dir, tmp_path):
    from tests.helpers import tiny_config
    from training.pipeline import train

    again = train(tiny_config(tmp_path / "again", 'model.kind="linear"', "linear.max_features=4096"),
                  progress=False, log=lambda m: None)
    a, b = read_meta(linear_model_dir), read_meta(again)
    assert abs(a.metrics["test"]["macro_f1"] - b.metrics["test"]["macro_f1"]) <= 0.005
    p_a = load_predictor(linear_model_dir).predict_proba(TEXTS)
    p_b = load_predictor(again).predict_proba(TEXTS)
    assert np.abs(p_a - p_b).max() < 1e-9


def _copy(folder, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(folder, dst)
    return dst


def test_tampered_folder_is_refused(linear_model_dir, tmp_path):
    folder = _copy(linear_model_dir, tmp_path)
    with open(folder / "model.skops", "r+b") as fh:
        fh.seek(100)
        byte = fh.read(1)
        fh.seek(100)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelFolderError, match="model.skops does not match its recorded SHA-256"):
        load_predictor(folder)


def test_missing_and_extra_files_are_refused(linear_model_dir, tmp_path):
    folder = _copy(linear_model_dir, tmp_path)
    (folder / "model.skops").rename(folder / "other.bin")
    with pytest.raises(ModelFolderError, match="model.skops is missing.*other.bin is not part"):
        load_meta(folder)


@pytest.mark.parametrize("change, fragment", [
    ({"labels": ["hate", "counter_narrative", "neutral"]}, "label schema"),
    ({"label_schema_version": 99}, "label schema"),
    ({"normaliser_version": 99}, "normaliser"),
    ({"format_version": 99}, "Upgrade Counterpoint"),
])
def test_incompatible_folder_is_refused(linear_model_dir, tmp_path, change, fragment):
    folder = _copy(linear_model_dir, tmp_path)
    meta = json.loads((folder / "model_meta.json").read_text())
    meta.update(change)
    (folder / "model_meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFolderError, match=fragment):
        load_meta(folder)


def test_not_a_model_folder(tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist"):
        load_meta(tmp_path / "nope")
    with pytest.raises(ModelFolderError, match="model_meta.json is missing"):
        load_meta(tmp_path)


def test_cli_train_rejects_bad_input_with_a_clear_message(tmp_path, mini_corpus):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hello", "label": "spam"}\n')
    run = subprocess.run([sys.executable, "-m", "training.cli", "train", "--data", str(bad), "--output",
                          str(tmp_path / "m"), "--set", "model.kind=linear", "--set", "data.dev=[]", "--set",
                          "data.test=[]", "--quiet"], capture_output=True, text=True)
    assert run.returncode == 2
    assert "bad.jsonl:1: label 'spam' is not one of" in run.stderr and "Traceback" not in run.stderr
    run = subprocess.run([sys.executable, "-m", "training.cli", "train", "--set", "train.epoch=1"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "did you mean train.epochs" in run.stderr


def test_cli_evaluate_writes_the_metrics_contract(linear_model_dir, mini_corpus, tmp_path):
    out = tmp_path / "eval"
    run = subprocess.run([sys.executable, "-m", "training.cli", "evaluate", "--model", str(linear_model_dir),
                          "--data", str(mini_corpus), "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"name", "version", "sha256"} <= set(metrics["model"])
    d = metrics["datasets"]["mini_corpus"]
    assert d["n"] == sum(1 for _ in open(mini_corpus))
    assert set(d["per_label"]) == set(L.LABELS) and set(d["per_lang"]) == {"en", "ur", "roman_ur"}
    assert {"precision", "recall", "f1", "support"} <= set(d["per_label"][L.EXTREMIST])
    assert np.asarray(d["confusion"]).shape == (3, 3) and np.asarray(d["confusion"]).sum() == d["n"]
    assert (out / "report.md").is_file() and (out / "mini_corpus_confusion.png").is_file()


def test_macro_f1_leaves_out_absent_labels():
    from training.data import Example
    from training.evaluate import compute_metrics

    examples = [Example(id=str(i), text="t", label=lab) for i, lab in enumerate(["neutral", "extremist"] * 5)]
    probs = np.tile([[0.1, 0.1, 0.8], [0.8, 0.1, 0.1]], (5, 1))
    m = compute_metrics(examples, probs, None)
    assert m["macro_f1"] == 1.0 and m["labels_in_macro_f1"] == ["extremist", "neutral"]


def test_user_view_per_sampling_part():
    """Real posts are reported per sampling part (a random feed apart from the surfaced hard cases), overall and per
    language; written rows (no part) are left out, and a file without parts gets no such table."""
    from training.data import Example
    from training.evaluate import compute_metrics, render_report

    E, C, N = [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]
    rows = [  # (label, lang, part, probabilities): flagged = extremist probability above the others
        ("neutral", "en", "random", N), ("neutral", "en", "random", N), ("neutral", "en", "random", E),
        ("neutral", "en", "random", N), ("extremist", "en", "random", E), ("extremist", "en", "random", N),
        ("neutral", "ur", "random", N), ("neutral", "ur", "random", N),
        ("neutral", "en", "surfaced", E), ("neutral", "en", "surfaced", E), ("counter_narrative", "en", "surfaced", C),
        ("extremist", "en", None, E), ("neutral", "en", None, E),  # written rows: in no part
    ]
    examples = [Example(id=str(i), text="t", label=lab, lang=lang, extra={"part": part} if part else {})
                for i, (lab, lang, part, _) in enumerate(rows)]
    probs = np.array([p for *_, p in rows])
    m = compute_metrics(examples, probs, None)
    parts = m["per_part_user"]
    assert set(parts) == {"random", "surfaced"} and list(parts["random"]) == ["all", "en", "ur"]
    feed = parts["random"]["all"]
    assert feed["n"] == 8 and feed["ordinary_flagged"] == 1 / 6  # 1 of the 6 neutral random posts
    assert feed["extremist_recall"] == 0.5 and feed["extremist_precision"] == 0.5 and feed["extremist_posts"] == 2
    assert parts["random"]["en"]["ordinary_flagged"] == 0.25 and parts["random"]["ur"]["ordinary_flagged"] == 0.0
    ur = parts["random"]["ur"]
    assert ur["extremist_recall"] is None and ur["extremist_average_precision"] is None  # no extremist row
    hard = parts["surfaced"]["all"]
    assert hard["ordinary_flagged"] == 1.0 and hard["counter_flagged"] == 0.0 and hard["extremist_precision"] == 0.0
    assert m["user"]["n"] == 13  # the file's own view still counts every row
    report = render_report({"model": {"name": "m", "version": "v", "backend": "b", "sha256": "0" * 64,
                                      "temperature": 1.0, "thresholds": None},
                            "datasets": {"real": {**m, "posts_per_second": 1.0}}}, plots=False)
    assert "| random | en | 6 | 25.0% |" in report
    assert "per_part_user" not in compute_metrics(examples[-2:], probs[-2:], None)
    from serving.artifact import ModelMeta
    from training.modelcard import render_model_card

    meta = ModelMeta(name="m", version="v", kind="linear", created_at="2026-12-06", labels=list(L.LABELS),
                     label_schema_version=1, normaliser_version=1)
    card = render_model_card(meta, {"datasets": {"test.real": m}})
    assert "| test.real | en | 6 | 25.0% | 2 | 0.500 | 0.500 |" in card  # the feed's own table on the card
