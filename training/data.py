"""Corpora: load and validate labelled rows from any supported file, near-duplicate and leakage checks, splits.

A *corpus row* (DESIGN.md): ``{"id", "text", "label", "lang", "kind", "source", "family"?}``. Files with other
field names are mapped with the ``data.*_field`` config keys (or ``label_map`` for other label values). Besides files,
``hf:owner/name[:split]`` names a dataset in the local Hugging Face cache, read offline (``load_hf_cached``).
Validation never stops at the first problem: it returns every problem with file and line, so a user fixes a file
in one pass.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from serving import labels as L
from serving.tabular import detect_format, iter_rows
from serving.text import normalize

REQUIRED_FIELDS = ("id", "text", "label", "lang", "kind", "source")
_LANG_TAG = re.compile(r"^[a-z]{2,8}(_[a-z]{2,8})?$")
NEAR_DUP_JACCARD = 0.6


@dataclass
class Example:
    id: str
    text: str
    label: str
    lang: str = "other"
    kind: str = ""
    source: str = ""
    family: str = ""
    file: str = ""
    line: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def label_id(self) -> int:
        return L.LABEL2ID[self.label]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


class DataError(ValueError):
    def __init__(self, problems: Sequence[Problem], limit: int = 30):
        self.problems = list(problems)
        shown = "\n  ".join(str(p) for p in self.problems[:limit])
        more = f"\n  ... and {len(self.problems) - limit} more" if len(self.problems) > limit else ""
        super().__init__(f"{len(self.problems)} problem(s) in the data:\n  {shown}{more}")


@dataclass
class FieldMap:
    text: str = "text"
    label: str = "label"
    lang: str = "lang"
    kind: str = "kind"
    id: str = "id"
    family: str = "family"
    source: str = "source"
    label_map: dict[str, str] = field(default_factory=dict)
    #: Corpus validation wants every contract field; training needs only text and label.
    strict: bool = True

    @classmethod
    def from_config(cls, data_cfg, strict: bool = False) -> "FieldMap":
        return cls(text=data_cfg.text_field, label=data_cfg.label_field, lang=data_cfg.lang_field,
                   kind=data_cfg.kind_field, id=data_cfg.id_field, family=data_cfg.family_field,
                   source=data_cfg.source_field, label_map=dict(data_cfg.label_map), strict=strict)


def load_examples(path: str | Path, fields: FieldMap | None = None, fmt: str | None = None
                  ) -> tuple[list[Example], list[Problem]]:
    """Read one file into examples, collecting (not raising) a problem for every unusable row.

    ``path`` may also be ``hf:owner/name[:split]``, a dataset in the local Hugging Face cache (``is_hf_spec``),
    read offline; ``fmt`` does not apply to it.
    """
    fields = fields or FieldMap()
    hf = is_hf_spec(path)
    path = str(path) if hf else Path(path)
    name = str(path)
    examples: list[Example] = []
    problems: list[Problem] = []
    try:
        rows = iter_hf_rows(name) if hf else iter_rows(path, detect_format(path, fmt))
        for res in rows:
            if res.error:
                problems.append(Problem(name, res.line, res.error))
                continue
            ex, errs = _to_example(res.row, fields, name, res.line)
            problems += errs
            if ex is not None:
                examples.append(ex)
    except (ValueError, FileNotFoundError, OSError) as exc:
        problems.append(Problem(name, 0, str(exc)))
    if not examples and not problems:
        problems.append(Problem(name, 0, "the file has no rows"))
    return examples, problems


def _to_example(row: dict, f: FieldMap, file: str, line: int) -> tuple[Example | None, list[Problem]]:
    problems = []
    required = [("id", f.id), ("text", f.text), ("label", f.label), ("lang", f.lang), ("kind", f.kind),
                ("source", f.source)] if f.strict else [("text", f.text), ("label", f.label)]
    for contract_name, col in required:
        if col not in row or row[col] is None:
            hint = f" (mapped from column {col!r})" if col != contract_name else ""
            problems.append(Problem(file, line, f"missing field {contract_name!r}{hint}"))
    if problems:
        return None, problems
    text = row[f.text]
    if not isinstance(text, str):
        return None, [Problem(file, line, f"field {f.text!r} must be a string, got {type(text).__name__}")]
    if not text.strip():
        return None, [Problem(file, line, f"field {f.text!r} is empty or whitespace")]
    if "\x00" in text:
        return None, [Problem(file, line, f"field {f.text!r} contains a NUL character")]
    raw_label = row[f.label]
    if isinstance(raw_label, (list, dict)):  # unhashable: would end in a TypeError traceback below
        return None, [Problem(file, line, f"label must be one string, one of {', '.join(L.LABELS)}; got a JSON "
                                          f"{'array' if isinstance(raw_label, list) else 'object'}")]
    label = f.label_map.get(str(raw_label), raw_label)
    if not isinstance(label, str) or label not in L.LABEL2ID:
        return None, [Problem(file, line, f"label {raw_label!r} is not one of {', '.join(L.LABELS)}"
                                          + ("" if f.label_map else " (map other labels with data.label_map)"))]
    lang = row.get(f.lang) or "other"
    if not isinstance(lang, str) or not _LANG_TAG.match(lang):
        return None, [Problem(file, line, f"lang {lang!r} is not a language tag like en, ur, roman_ur")]
    ident = row.get(f.id)
    ident = str(ident) if ident is not None and str(ident).strip() else f"{Path(file).stem}:{line}"
    for contract_name, col in (("kind", f.kind), ("source", f.source), ("family", f.family)):
        value = row.get(col)
        if value is not None and not isinstance(value, str):
            return None, [Problem(file, line, f"field {contract_name!r} must be a string")]
    used = {f.text, f.label, f.lang, f.kind, f.id, f.family, f.source}
    return Example(id=ident, text=text, label=label, lang=lang, kind=row.get(f.kind) or "",
                   source=row.get(f.source) or "", family=row.get(f.family) or "", file=file, line=line,
                   extra={k: v for k, v in row.items() if k not in used}), []


def load_many(paths: Iterable[str | Path], fields: FieldMap | None = None, fmt: str | None = None) -> list[Example]:
    """Load files for training; raise ``DataError`` listing every problem if any row is unusable."""
    examples, problems = [], []
    for p in paths:
        ex, pr = load_examples(p, fields, fmt)
        examples += ex
        problems += pr
    if problems:
        raise DataError(problems)
    return examples


def fingerprint(paths: Iterable[str | Path]) -> dict[str, dict]:
    out = {}
    for p in paths:
        if is_hf_spec(p):  # the Arrow files of the cached split that was read
            try:
                files = sorted(f["filename"] for f in load_hf_cached(str(p)).cache_files)
            except ValueError:
                files = []
            out[str(p)] = {"sha256": hashlib.sha256(b"".join(Path(f).read_bytes() for f in files)).hexdigest()}
            continue
        p = Path(p)
        if p.is_file():
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            digest = hashlib.sha256(b"".join(f.read_bytes() for f in sorted(p.rglob("*.arrow")))).hexdigest()
        out[str(p)] = {"sha256": digest}
    return out


# --- datasets in the local Hugging Face cache (hf:owner/name[:split]) ----------------------------------------------

HF_PREFIX = "hf:"
_HF_SPEC = re.compile(r"^hf:(?P<repo>[A-Za-z0-9][\w.-]*(?:/[A-Za-z0-9][\w.-]*)?)(?::(?P<split>\w+(?:\.\w+)*))?$")


def is_hf_spec(path: str | Path) -> bool:
    """True for ``hf:owner/name`` / ``hf:owner/name:split`` (a ``Path`` made from such a string too)."""
    return str(path).startswith(HF_PREFIX)


def parse_hf_spec(spec: str) -> tuple[str, str | None]:
    """``hf:owner/name[:split]`` -> (``owner/name``, split or None); a clear error for anything else."""
    m = _HF_SPEC.match(str(spec))
    if not m:
        raise ValueError(f"{spec!r} is not a Hugging Face dataset reference; write hf:owner/name or "
                         "hf:owner/name:split (e.g. hf:stanfordnlp/imdb:test)")
    return m["repo"], m["split"]


def hf_cache_dirs() -> tuple[Path, Path]:
    """The ``datasets`` cache and the hub cache, read from the environment now (the ``datasets`` library reads it
    once, at import): ``HF_DATASETS_CACHE`` / ``HF_HUB_CACHE``, else under ``HF_HOME`` (default
    ``~/.cache/huggingface``)."""
    import os

    home = Path(os.path.expanduser(os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")))
    datasets_cache = os.environ.get("HF_DATASETS_CACHE")
    hub_cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    return (Path(os.path.expanduser(datasets_cache)) if datasets_cache else home / "datasets",
            Path(os.path.expanduser(hub_cache)) if hub_cache else home / "hub")


def _hf_prepared_dirs(repo: str, cache: Path) -> list[Path]:
    """Where ``load_dataset(repo)`` left the prepared Arrow files: ``<cache>/owner___name/<config>/<version>/<hash>``
    (the layout the library's offline fallback, ``CachedDatasetModuleFactory``, reads)."""
    from datasets.naming import camelcase_to_snakecase

    parts = repo.split("/")
    parts[-1] = camelcase_to_snakecase(parts[-1])
    root = cache / "___".join(parts)
    return sorted(d for d in root.glob("*/*/*") if d.is_dir() and (d / "dataset_info.json").is_file())


def _hf_snapshot(repo: str, hub_cache: Path) -> Path | None:
    """The hub-cache snapshot of a dataset repository (``huggingface-cli download --repo-type dataset``,
    ``snapshot_download``): ``<hub>/datasets--owner--name/snapshots/<refs/main>``, or None."""
    folder = hub_cache / ("datasets--" + repo.replace("/", "--"))
    ref = folder / "refs" / "main"
    snapshots = folder / "snapshots"
    if ref.is_file():
        snap = snapshots / ref.read_text(encoding="utf-8").strip()
        return snap if snap.is_dir() else None
    found = sorted(snapshots.glob("*")) if snapshots.is_dir() else []
    return found[0] if len(found) == 1 and found[0].is_dir() else None


class _Offline:
    """Offline mode for the length of one ``load_dataset`` call: the environment variables and the flags that
    ``datasets`` and ``huggingface_hub`` copied from them at import; the library's own notices kept quiet."""

    _ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")

    def __enter__(self):
        import os

        import datasets
        import huggingface_hub.constants as hub_constants

        self._env = {k: os.environ.get(k) for k in self._ENV}
        self._flags = [(mod, attr, getattr(mod, attr)) for mod, attr in
                       ((datasets.config, "HF_HUB_OFFLINE"), (datasets.config, "HF_DATASETS_OFFLINE"),
                        (hub_constants, "HF_HUB_OFFLINE")) if hasattr(mod, attr)]
        for k in self._ENV:
            os.environ[k] = "1"
        for mod, attr, _ in self._flags:
            setattr(mod, attr, True)
        self._verbosity = datasets.logging.get_verbosity()
        datasets.logging.set_verbosity_error()
        bars = getattr(datasets.utils, "are_progress_bars_disabled", None)
        self._bars = bars is not None and not bars()
        if self._bars:
            datasets.utils.disable_progress_bars()
        return self

    def __exit__(self, *exc):
        import os

        import datasets

        for k, v in self._env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for mod, attr, value in self._flags:
            setattr(mod, attr, value)
        datasets.logging.set_verbosity(self._verbosity)
        if self._bars:
            datasets.utils.enable_progress_bars()
        return False


def _not_cached(repo: str, cache: Path, hub_cache: Path, detail: str = "") -> ValueError:
    return ValueError(
        f"the dataset {repo!r} is not in the local Hugging Face cache (looked in {cache}, the `datasets` "
        f"cache, and {hub_cache}, the hub cache; set HF_HOME or HF_DATASETS_CACHE to use another){detail}. "
        "Counterpoint reads it offline and never downloads. To put it there, run once on a machine with network "
        f"and the same cache: python -c \"import datasets; datasets.load_dataset('{repo}')\" (or copy that "
        "machine's cache folder here); or save it with `save_to_disk` and pass that folder to --data instead")


def load_hf_cached(spec: str):
    """The ``Dataset`` that ``hf:owner/name[:split]`` names, loaded offline with ``datasets.load_dataset`` from the
    local cache (``hf_cache_dirs``). Without a split: ``train`` if there is one, else the only split.

    Looked up, in order: the prepared Arrow files that an earlier ``load_dataset("owner/name")`` wrote to the
    ``datasets`` cache (``owner___name/<config>/<version>/<hash>/``), then a hub-cache snapshot of the repository
    (``datasets--owner--name/snapshots/<rev>/``), loaded as a local folder. Every failure is a ``ValueError``
    that says what to do.
    """
    repo, split = parse_hf_spec(spec)
    try:
        import datasets
    except ImportError:
        raise ValueError(f"{spec} is a Hugging Face dataset; reading it needs the `datasets` library: "
                         "pip install 'counterpoint[hf-datasets]'") from None
    cache, hub_cache = hf_cache_dirs()
    if _hf_prepared_dirs(repo, cache):
        source = repo
    else:
        snapshot = _hf_snapshot(repo, hub_cache)
        if snapshot is None:
            raise _not_cached(repo, cache, hub_cache)
        source = str(snapshot)
    try:
        with _Offline():
            dsd = datasets.load_dataset(source, cache_dir=str(cache))
    except ImportError:
        raise
    except Exception as exc:  # the library's errors vary by version (ConnectionError, FileNotFoundError, ...)
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "multiple" in str(exc) and "configuration" in str(exc):
            raise ValueError(f"the cache holds several configurations of {repo!r}; Counterpoint reads a "
                             f"dataset with one. Load the one you want and pass it as a folder: "
                             f"datasets.load_dataset('{repo}', CONFIG).save_to_disk(FOLDER) ({message})") from None
        raise _not_cached(repo, cache, hub_cache, f" (the `datasets` library: {message})") from None
    if not isinstance(dsd, datasets.DatasetDict):  # a single Dataset
        dsd = datasets.DatasetDict({"train": dsd})
    splits = list(dsd)
    if split is None:
        if "train" in dsd:
            split = "train"
        elif len(splits) == 1:
            split = splits[0]
        else:
            raise ValueError(f"the dataset {repo!r} has no train split but several others ({', '.join(splits)}); "
                             f"choose one, e.g. hf:{repo}:{splits[0]}")
    if split not in dsd:
        raise ValueError(f"the dataset {repo!r} has no split {split!r}; its splits are {', '.join(splits)} "
                         f"(e.g. hf:{repo}:{splits[0]})")
    return dsd[split]


def iter_hf_rows(spec: str):
    """The rows of ``hf:owner/name[:split]`` as ``serving.tabular.RowResult`` (``line``: the 1-based row number),
    like every other reader."""
    from serving.tabular import RowResult

    ds = load_hf_cached(spec)
    for offset in range(0, len(ds), 1024):
        batch = ds[offset:min(offset + 1024, len(ds))]
        names = list(batch)
        for k in range(len(batch[names[0]]) if names else 0):
            yield RowResult(offset + k + 1, {col: batch[col][k] for col in names})


# --- duplicates --------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+")


def _tokens(text: str) -> list[str]:
    # Through the model's own normaliser, so zero-width tricks and letter-form variants don't hide a copy.
    return _TOKEN.findall(normalize(text).lower())


def dedup_key(text: str) -> str:
    return " ".join(_tokens(text))


def parent_of(ex: "Example") -> str:
    """The row's parent post (reply context, the corpus field ``context``), or ""."""
    parent = ex.extra.get("context")
    return parent if isinstance(parent, str) and parent.strip() else ""


def row_key(ex: "Example") -> str:
    """A row's identity for duplicates and leakage: its text, and its parent post where it has one (the same short
    reply under different parents is different data)."""
    parent = parent_of(ex)
    return dedup_key(ex.text) + (f" ⟂ {dedup_key(parent)}" if parent else "")


def shingles(text: str, n: int = 5) -> frozenset:
    toks = _tokens(text)
    if len(toks) < n:
        return frozenset([tuple(toks)])
    return frozenset(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))


def near_duplicate_pairs(texts: Sequence[str], threshold: float = NEAR_DUP_JACCARD) -> list[tuple[int, int, float]]:
    """Pairs (i, j, jaccard) of texts whose word 5-gram Jaccard similarity is at least ``threshold``.

    An inverted index over shingles keeps this near-linear: only texts that share a shingle are compared.
    """
    sets = [shingles(t) for t in texts]
    index: dict[tuple, list[int]] = defaultdict(list)
    for i, s in enumerate(sets):
        for sh in s:
            index[sh].append(i)
    pairs = []
    for i, s in enumerate(sets):
        shared: Counter = Counter()
        for sh in s:
            for j in index[sh]:
                if j > i:
                    shared[j] += 1
        for j, k in shared.items():
            jac = k / (len(s) + len(sets[j]) - k)
            if jac >= threshold:
                pairs.append((i, j, jac))
    return pairs


# --- splitting ---------------------------------------------------------------------------------------------------

def split_by_family(examples: Sequence[Example], fractions: tuple[float, float] = (0.15, 0.2), seed: int = 13
                    ) -> dict[str, list[Example]]:
    """Deterministic train/dev/test split that never divides a family (rows without one are their own family).

    Families are shuffled with ``seed`` within each language and assigned to dev and test until those reach
    their fraction of the language's rows; the rest is train.
    """
    dev_frac, test_frac = fractions
    if dev_frac < 0 or test_frac < 0 or dev_frac + test_frac >= 1:
        raise ValueError("split fractions must be >= 0 and sum to less than 1")
    families: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        families[ex.family or f"_row:{ex.id}"].append(ex)
    # A family belongs to the language most of its rows are in (translations stay with their original).
    by_lang: dict[str, list[str]] = defaultdict(list)
    for fam, rows in families.items():
        by_lang[Counter(r.lang for r in rows).most_common(1)[0][0]].append(fam)
    out: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    for lang in sorted(by_lang):
        fams = sorted(by_lang[lang])
        random.Random(f"{seed}:{lang}").shuffle(fams)
        total = sum(len(families[f]) for f in fams)
        counts = {"dev": 0, "test": 0}
        for fam in fams:
            if counts["test"] < test_frac * total:
                split = "test"
            elif counts["dev"] < dev_frac * total:
                split = "dev"
            else:
                split = "train"
            if split != "train":
                counts[split] += len(families[fam])
            out[split] += families[fam]
    return out
