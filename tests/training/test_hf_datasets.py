"""`--data hf:owner/name[:split]`: a dataset already in the local Hugging Face cache, read offline (issue 12).

The cache entries here are real: the `datasets` library's own builder prepares them into a temporary cache in the
layout an online ``load_dataset("owner/name")`` leaves behind (``<HF_DATASETS_CACHE>/owner___name/<config>/
<version>/<commit>/name-<split>.arrow`` + ``dataset_info.json``), and ``load_dataset`` finds them there offline.
Nothing touches the network: HF_HUB_OFFLINE is set and the hub cache is empty.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import MINI_CORPUS, read_jsonl, write_jsonl
from training.data import DataError, FieldMap, fingerprint, load_examples, load_many

datasets = pytest.importorskip("datasets")

COMMIT = "3f1c0e0d9b6a4c2e8f7a5b3d1c9e7f5a3b1d9c7e"
LABELS = {"extremist": "hate", "counter_narrative": "counter", "neutral": "none"}
LABEL_MAP = {v: k for k, v in LABELS.items()}


@pytest.fixture
def hf_home(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face home for this test, offline."""
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    for var in ("HF_DATASETS_CACHE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def cache_dataset(home: Path, repo: str, splits: dict[str, list[dict]], work: Path) -> Path:
    """Put ``repo`` into ``home``'s `datasets` cache as ``load_dataset(repo)`` would after downloading it: the
    library's packaged JSON builder prepares the split files into ``owner___name/default/0.0.0/<commit>``."""
    src = work / "src" / repo.replace("/", "__") / repo.split("/")[-1]  # dataset_name = the folder's name
    src.mkdir(parents=True)
    for split, rows in splits.items():
        write_jsonl(src / f"{split}.jsonl", rows)
    builder = datasets.load_dataset_builder(str(src), cache_dir=str(home / "datasets"))
    # What the Hub module factory gives the builder online: the repo id (-> owner___name) and the commit hash.
    builder.repo_id, builder.hash = repo, COMMIT
    builder._cache_dir = builder._build_cache_dir()
    builder.download_and_prepare()
    owner, name = repo.split("/")
    entry = home / "datasets" / f"{owner}___{name}" / "default" / "0.0.0" / COMMIT
    assert (entry / "dataset_info.json").is_file() and (entry / f"{name}-{next(iter(splits))}.arrow").is_file()
    return entry


def rows(n: int, split: str) -> list[dict]:
    out = []
    for i in range(n):
        label = list(LABELS)[i % 3]
        out.append({"idx": f"{split}-{i}", "sentence": f"{split} sentence number {i} about {label}",
                    "tag": LABELS[label], "lang": "en"})
    return out


FIELDS = FieldMap(text="sentence", label="tag", id="idx", label_map=LABEL_MAP, strict=False)


def test_named_split_default_split_and_mapping(hf_home, tmp_path, monkeypatch):
    cache_dataset(hf_home, "owner/name", {"train": rows(6, "train"), "test": rows(3, "test")}, tmp_path)

    examples, problems = load_examples("hf:owner/name:test", FIELDS)
    assert problems == []
    assert [(e.id, e.text, e.label, e.lang, e.line, e.file) for e in examples] == [
        ("test-0", "test sentence number 0 about extremist", "extremist", "en", 1, "hf:owner/name:test"),
        ("test-1", "test sentence number 1 about counter_narrative", "counter_narrative", "en", 2,
         "hf:owner/name:test"),
        ("test-2", "test sentence number 2 about neutral", "neutral", "en", 3, "hf:owner/name:test")]
    # No split: train. A Path built from the string (typer's --data) reads the same.
    train = load_many([Path("hf:owner/name")], FIELDS)
    assert [e.id for e in train] == [f"train-{i}" for i in range(6)]
    assert [e.label for e in train] == ["extremist", "counter_narrative", "neutral"] * 2
    # Same field map, same checks as any other format: unmapped labels are row problems with their row number.
    _, problems = load_examples("hf:owner/name:test", FieldMap(text="sentence", label="tag", strict=False))
    assert [(p.line, "is not one of extremist" in p.message) for p in problems] == [(1, True), (2, True), (3, True)]
    # Offline for the call whatever the process says, and the switch is undone after it.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    assert len(load_many(["hf:owner/name:test"], FIELDS)) == 3
    assert datasets.config.HF_HUB_OFFLINE is False
    # The fingerprint is of the cached Arrow files that were read, not of nothing.
    digest = fingerprint(["hf:owner/name:test"])["hf:owner/name:test"]["sha256"]
    assert digest != hashlib.sha256(b"").hexdigest()


def test_default_split_without_train_and_missing_split(hf_home, tmp_path):
    cache_dataset(hf_home, "owner/evalonly", {"test": rows(3, "test")}, tmp_path)
    assert len(load_many(["hf:owner/evalonly"], FIELDS)) == 3  # the only split
    cache_dataset(hf_home, "owner/two", {"validation": rows(2, "validation"), "test": rows(3, "test")}, tmp_path)
    with pytest.raises(DataError, match=r"no train split but several others \((test, validation|validation, "
                                        r"test)\); choose one, e.g. hf:owner/two:"):
        load_many(["hf:owner/two"], FIELDS)
    with pytest.raises(DataError) as err:
        load_many(["hf:owner/two:dev"], FIELDS)
    assert "has no split 'dev'; its splits are" in str(err.value)
    assert "validation" in str(err.value) and "test" in str(err.value)


def test_not_in_the_cache_is_a_clear_error(hf_home):
    _, problems = load_examples("hf:owner/missing", FIELDS)
    [problem] = problems
    message = str(problem)
    assert message.startswith("hf:owner/missing: the dataset 'owner/missing' is not in the "
                              "local Hugging Face cache")
    assert str(hf_home / "datasets") in message and str(hf_home / "hub") in message
    assert "HF_HOME or HF_DATASETS_CACHE" in message
    assert "datasets.load_dataset('owner/missing')" in message and "save_to_disk" in message
    assert "Traceback" not in message
    _, problems = load_examples("hf:not a name", FIELDS)
    assert "is not a Hugging Face dataset reference" in problems[0].message


def test_hub_cache_snapshot_is_read_too(hf_home):
    """A repository fetched with `huggingface-cli download --repo-type dataset` (hub cache only, never prepared
    by load_dataset) is read from its snapshot, offline."""
    repo = hf_home / "hub" / "datasets--owner--snap"
    snapshot = repo / "snapshots" / COMMIT
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot.mkdir(parents=True)
    write_jsonl(snapshot / "train.jsonl", rows(4, "train"))
    write_jsonl(snapshot / "test.jsonl", rows(2, "test"))
    assert [e.id for e in load_many(["hf:owner/snap:test"], FIELDS)] == ["test-0", "test-1"]
    assert len(load_many(["hf:owner/snap"], FIELDS)) == 4


def test_train_and_evaluate_through_the_cli(hf_home, tmp_path):
    from training.cli import app

    corpus = read_jsonl(MINI_CORPUS)
    relabelled = [{"idx": r["id"], "sentence": r["text"], "tag": LABELS[r["label"]], "lang": r["lang"],
                   "family": r.get("family")} for r in corpus]
    cache_dataset(hf_home, "owner/corpus", {"train": relabelled[:72], "test": relabelled[72:]}, tmp_path)
    out = tmp_path / "model"
    label_map = "{" + ", ".join(f'{k}="{v}"' for k, v in LABEL_MAP.items()) + "}"
    res = CliRunner().invoke(app, [
        "train", "--data", "hf:owner/corpus", "--output", str(out), "--quiet",
        "--set", 'model.kind="linear"', "--set", "linear.max_features=4096",
        "--set", "data.dev=[]", "--set", 'data.test=["hf:owner/corpus:test"]',
        "--set", "data.split_fractions=[0.25, 0.0]", "--set", 'data.text_field="sentence"',
        "--set", 'data.label_field="tag"', "--set", 'data.id_field="idx"', "--set", f"data.label_map={label_map}",
        "--set", 'output.name="hf-test"', "--set", 'output.version="0.0.1"'])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "model_meta.json").read_text())
    assert set(meta["data"]["files"]) == {"hf:owner/corpus", "hf:owner/corpus:test"}
    assert meta["data"]["rows"]["test"] == 24

    # evaluate reads the schema's label names: a second cached dataset with them, under another text column.
    schema_rows = [{"sentence": r["text"], "y": r["label"], "lang": r["lang"]} for r in corpus[72:]]
    cache_dataset(hf_home, "owner/plain", {"test": schema_rows}, tmp_path)
    res = CliRunner().invoke(app, ["evaluate", "--model", str(out), "--data", "hf:owner/plain:test", "--out",
                                   str(tmp_path / "eval"), "--text-field", "sentence", "--label-field", "y",
                                   "--no-plots"])
    assert res.exit_code == 0, res.output
    assert "n=24" in res.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert [d["n"] for d in metrics["datasets"].values()] == [24]

    # A dataset that is not cached: status 2 and the message, no traceback.
    res = CliRunner().invoke(app, ["evaluate", "--model", str(out), "--data", "hf:owner/absent", "--out",
                                   str(tmp_path / "eval2"), "--no-plots"])
    assert res.exit_code == 2
    assert "not in the local Hugging Face cache" in res.output and "Traceback" not in res.output
