"""``counterpoint train``: data -> model -> calibration -> export -> evaluation -> self-describing folder.

The folder is built in a temporary sibling and moved into place only when complete, so a crash never leaves a
half-written ``models/default`` that the service would then refuse.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from serving import labels as L
from serving.artifact import ModelMeta, library_versions, update_meta, write_meta
from serving.predictor import decide, load_predictor, softmax
from serving.text import NORMALISER_VERSION, normalize
from training.calibrate import calibrate, choose_profiles
from training.config import TrainConfig
from training.data import DataError, Example, FieldMap, Problem, fingerprint, load_many, row_key, split_by_family
from training.evaluate import cached_probs, evaluate_sets
from training.modelcard import write_model_card


def load_splits(cfg: TrainConfig) -> dict[str, list[Example]]:
    """Train/dev/test examples as configured; dev/test split off train by family where not given."""
    fields = FieldMap.from_config(cfg.data)
    splits = {"train": load_many(cfg.data.train, fields, cfg.data.format)}
    for name in ("dev", "test"):
        paths = getattr(cfg.data, name)
        splits[name] = load_many(paths, fields, cfg.data.format) if paths else []
    if not splits["dev"] or not splits["test"]:
        dev_frac, test_frac = cfg.data.split_fractions
        carved = split_by_family(splits["train"], (0.0 if splits["dev"] else dev_frac,
                                                   0.0 if splits["test"] else test_frac), seed=cfg.train.seed)
        splits["train"] = carved["train"]
        splits["dev"] = splits["dev"] or carved["dev"]
        splits["test"] = splits["test"] or carved["test"]
    # Before any training: an empty split would otherwise fail only after the whole fine-tune (calibration and
    # early stopping need dev; the report needs test).
    empty = [name for name in ("train", "dev", "test") if not splits[name]]
    if empty:
        raise DataError([Problem("data", 0, (
            f"the {' and '.join(empty)} split(s) are empty ({len(splits['train'])} train, {len(splits['dev'])} dev, "
            f"{len(splits['test'])} test rows after splitting by family with data.split_fractions "
            f"{list(cfg.data.split_fractions)}); give data.dev / data.test files, add rows of more families, or "
            "raise data.split_fractions"))])
    check_leakage(splits)
    return splits


def check_leakage(splits: dict[str, list[Example]]) -> None:
    seen: dict[str, Example] = {ex_key: ex for ex in splits["train"] for ex_key in [row_key(ex)]}
    problems = []
    for name in ("dev", "test"):
        for ex in splits[name]:
            if row_key(ex) in seen:
                first = seen[row_key(ex)]
                problems.append(Problem(ex.file, ex.line, f"text also in train ({first.file}:{first.line}); "
                                                          f"{name} must not overlap train"))
    if problems:
        raise DataError(problems)


def contexts_of(examples: list[Example], cfg: TrainConfig) -> list[str | None] | None:
    """Each row's normalised parent post (``data.context_field``), or None when no row has one."""
    name = cfg.data.context_field
    if not name:
        return None
    out = [normalize(c) if isinstance(c := ex.extra.get(name), str) and c.strip() else None for ex in examples]
    return out if any(out) else None


def training_inputs(examples: list[Example], texts: list[str], cfg: TrainConfig, *, reads_context: bool,
                    subtypes: bool) -> tuple[list[str | None] | None, list[int], list[int] | None]:
    """Parents, labels and sub-type ids for the training rows. A share ``train.context_dropout`` of the rows with a
    parent (all of them for a model that does not read context) is read alone: labelled with ``alone_label`` where
    the row has one, and left out of the sub-type loss when that changes the label."""
    parents = contexts_of(examples, cfg) or [None] * len(examples)
    rng = random.Random(f"{cfg.train.seed}:context-dropout")
    names = L.subtype_names()
    ctx_out, ys, subs = [], [], []
    for i, ex in enumerate(examples):
        label, ctx = ex.label, (parents[i] if reads_context else None)
        if parents[i] is not None and (ctx is None or rng.random() < cfg.train.context_dropout):
            ctx = None
            alone = ex.extra.get(cfg.data.alone_label_field)
            alone = cfg.data.label_map.get(str(alone), alone) if alone is not None else None
            if isinstance(alone, str) and alone in L.LABEL2ID:
                label = alone
        ctx_out.append(ctx)
        ys.append(L.LABEL2ID[label])
        sub = L.subtype_of(label, ex.kind) if label == ex.label else None
        subs.append(names.index(sub) if sub else -100)
    return (ctx_out if any(ctx_out) else None), ys, (subs if subtypes else None)


def _refit_subtypes(res, cfg: TrainConfig, texts: list[str], labels: list[int], parents: list | None,
                    subs: list[int], dev_rows: list[Example], dev_texts: list[str], dev_parents: list | None,
                    log) -> dict:
    """Refit the sub-type rows of the fine-tuned output layer on its frozen features (``train.subtype_refit``)."""
    from dataclasses import asdict

    from training.finetune import head_inputs, refit_subtype_rows

    started, names = time.time(), L.subtype_names()
    rows = [i for i, s in enumerate(subs) if s >= 0 and labels[i] >= 0]
    dev_subs = [names.index(n) if (n := L.subtype_of(ex.label, ex.kind)) else -100 for ex in dev_rows]
    length = cfg.model.max_length
    train_x = head_inputs(res.model, res.tokenizer, [texts[i] for i in rows], length,
                          None if parents is None else [parents[i] for i in rows], precision=res.precision)
    dev_x = head_inputs(res.model, res.tokenizer, dev_texts, length, dev_parents, precision=res.precision)
    refit = refit_subtype_rows(res.model, train_x, [labels[i] for i in rows], [subs[i] for i in rows], dev_x,
                               [L.LABEL2ID[ex.label] for ex in dev_rows], dev_subs, seed=cfg.train.seed)
    log(f"sub-type rows refitted on frozen features ({refit.rows} training rows, C {refit.C}): dev sub-type accuracy "
        f"given the label {refit.dev_accuracy_before:.3f} -> {refit.dev_accuracy_after:.3f}"
        + ("" if refit.kept else "; not better, the jointly trained rows stay") + f" ({time.time() - started:.0f}s)")
    return {**asdict(refit), "seconds": round(time.time() - started, 1)}


BLEND_FILE = "linear_blend.npz"


def _real_weights(cfg: TrainConfig, examples: list[Example]) -> list[float]:
    """Per-row loss weights: ``train.real_weight`` for real posts, 1 for written rows."""
    return [cfg.train.real_weight if ex.extra.get("origin") == "real" else 1.0 for ex in examples]


def _fit_blend(cfg: TrainConfig, folder: Path, examples: list[Example], texts: list[str], labels: list[int],
               parents: list[str | None] | None, log, with_subtypes: bool = False) -> dict:
    """The linear baseline blended into the transformer's label logits (``model.linear_blend``): fitted on the
    training rows the transformer saw (rewrites included; real posts weighted as in the fine-tune), except replies
    read with a parent, whose label depends on a parent the linear model does not read. Saved in ``folder``.
    ``with_subtypes`` (a model with a sub-type head) and ``model.subtype_blend``: sub-type rows on the same features
    (``training.baseline.fit_subtypes``) go into the same file."""
    from serving.linear_arrays import LinearArrays
    from training.baseline import fit

    started = time.time()
    keep = [i for i in range(len(texts)) if not parents or not parents[i]]
    weights = _real_weights(cfg, [examples[i] for i in keep])
    pipe = fit(cfg.linear, [texts[i] for i in keep], [labels[i] for i in keep],
               class_weighting=cfg.train.class_weighting, seed=cfg.train.seed, sample_weight=weights)
    arrays = LinearArrays.from_pipeline(pipe)
    out = {"file": BLEND_FILE, "weight": cfg.model.linear_blend, "rows": len(keep)}
    if with_subtypes and cfg.model.subtype_blend > 0:
        arrays, taught = _linear_subtypes(cfg, arrays, examples, texts, labels, keep)
        out.update(subtype_weight=cfg.model.subtype_blend, subtype_rows=taught)
    arrays.save(folder / BLEND_FILE)  # served without scikit-learn (its arrays only)
    log(f"linear blend: TF-IDF baseline fitted on {len(keep)} training rows in {time.time() - started:.0f}s, "
        f"weight {cfg.model.linear_blend}" + (f", sub-type weight {cfg.model.subtype_blend}"
                                              if "subtype_weight" in out else ""))
    return out


def _version(cfg: TrainConfig) -> str:
    if cfg.output.version != "auto":
        return cfg.output.version
    return datetime.now(timezone.utc).strftime("%Y.%m.%d-%H%M%S")


def _training_texts(cfg: TrainConfig, rows: list[Example], log) -> list[str]:
    """The normalised training texts as the model sees them: with ``train.augment``, a seeded share rewritten
    (training/augment.py), so the same config gives the same texts."""
    if cfg.train.augment <= 0:
        return [normalize(ex.text) for ex in rows]
    from training.augment import augment

    texts, changed = augment([ex.text for ex in rows], [ex.lang for ex in rows], cfg.train.augment, cfg.train.seed)
    log(f"augmentation: {sum(changed.values())} of {len(texts)} training rows rewritten ("
        + ", ".join(f"{k} {v}" for k, v in changed.items()) + ")")
    return [normalize(t) for t in texts]


def add_subtype_blend(folder: Path, weight: float, *, log=print) -> dict:
    """Give a trained folder the linear model's sub-type rows (``model.subtype_blend``) without retraining: the
    training rows are rebuilt from the folder's own training config exactly as ``train`` built them (files,
    rewrites, replies read alone), the sub-type regressions fitted on the folder's linear features (its label rows
    stay as they are), and ``model_meta.json`` records ``linear_blend.subtype_weight`` (a new model identity).
    Needs a transformer folder with a sub-type head and a linear blend."""
    from serving.artifact import ModelFolderError, read_meta
    from serving.linear_arrays import LinearArrays

    folder = Path(folder)
    meta = read_meta(folder)
    if not meta.linear_blend or not meta.subtypes:
        raise ModelFolderError(f"{folder} has no linear blend or no sub-type head (model.linear_blend, "
                               "train.subtype_weight); the sub-type blend needs both")
    if not 0 < weight < 1:
        raise ValueError(f"the sub-type weight must be between 0 and 1 (exclusive), not {weight}")
    cfg = TrainConfig.model_validate(meta.training_config)
    splits = load_splits(cfg)
    texts = _training_texts(cfg, splits["train"], log)
    parents, labels, _ = training_inputs(splits["train"], texts, cfg, reads_context=True, subtypes=True)
    path = folder / meta.linear_blend["file"]
    arrays = LinearArrays.load(path)
    keep = [i for i in range(len(texts)) if not parents or not parents[i]]
    arrays, taught = _linear_subtypes(cfg, arrays, splits["train"], texts, labels, keep)
    arrays.save(path)
    blend = {**meta.linear_blend, "subtype_weight": weight, "subtype_rows": taught}
    meta = write_meta(folder, meta.model_copy(update={"linear_blend": blend}))
    # The card names the new identity; the training's sub-type figures predate the blend, so they are left out
    # (`counterpoint evaluate` measures them again).
    result_file = folder / "eval" / "metrics.json"
    result = json.loads(result_file.read_text(encoding="utf-8")) if result_file.is_file() else None
    for d in ((result or {}).get("datasets") or {}).values():
        d.pop("subtypes", None)
    write_model_card(folder, meta, result)
    log(f"{folder}: linear sub-type rows fitted on {blend['subtype_rows']} training rows, weight {weight}")
    return blend


def _linear_subtypes(cfg: TrainConfig, arrays, examples: list[Example], texts: list[str], labels: list[int],
                     keep: list[int]):
    """``arrays`` with the linear model's sub-type rows (``training.baseline.fit_subtypes``) fitted on its own
    features of the kept training rows, and how many rows taught a sub-type: as for the fine-tune, a reply read
    alone whose label then changes teaches none. Training and ``add_subtype_blend`` both fit them here."""
    from training.baseline import fit_subtypes

    subs = [L.subtype_of(examples[i].label, examples[i].kind) if L.ID2LABEL[labels[i]] == examples[i].label
            else None for i in keep]
    coef, intercept = fit_subtypes(cfg.linear, arrays.features([texts[i] for i in keep]), [labels[i] for i in keep],
                                   subs, seed=cfg.train.seed)
    return arrays.with_subtypes(coef, intercept), sum(s is not None for s in subs)


def train(cfg: TrainConfig, *, progress: bool = True, log=print, resume: bool = False) -> Path:
    """Train, calibrate, export, evaluate and write ``cfg.output.dir``; returns its path.

    A transformer fine-tune writes checkpoints to ``<output.dir>.partial/`` every ``train.checkpoint_every`` steps
    (``training.checkpoint``); ``resume`` continues from one. The folder is removed once the model is written."""
    started = time.time()
    splits = load_splits(cfg)
    counts = {name: len(rows) for name, rows in splits.items()}
    log(f"data: {counts['train']} train, {counts['dev']} dev, {counts['test']} test rows")
    norm = {name: [normalize(ex.text) for ex in rows] for name, rows in splits.items()}
    norm["train"] = _training_texts(cfg, splits["train"], log)
    ys = {name: np.asarray([ex.label_id for ex in rows]) for name, rows in splits.items()}
    transformer = cfg.model.kind == "transformer"
    with_head = transformer and cfg.train.subtype_weight > 0
    train_ctx, train_y, train_sub = training_inputs(splits["train"], norm["train"], cfg, reads_context=transformer,
                                                    subtypes=with_head)
    reads_context = train_ctx is not None
    ctx = {name: contexts_of(rows, cfg) if reads_context else None for name, rows in splits.items()}
    if reads_context:
        log(f"reply context: {sum(c is not None for c in train_ctx)} train rows read with their parent post")

    out = Path(cfg.output.dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        history, extra, used_checkpoint, blend = [], {}, None, None
        if cfg.model.kind == "linear":
            from serving.skops_io import save_pipeline
            from training.baseline import fit

            if resume:
                log("--resume: the linear model trains in one step and writes no checkpoints; training it")
            pipe = fit(cfg.linear, norm["train"], train_y, class_weighting=cfg.train.class_weighting,
                       seed=cfg.train.seed)
            dev_logits = np.asarray(pipe.decision_function(norm["dev"]), dtype=np.float64)
            save_pipeline(pipe, tmp / "model.skops")
        else:
            from training.checkpoint import checkpoint_dir
            from training.finetune import finetune, fp16_state_dict, predict_logits, resolve_base, round_to_fp16

            resolve_base(cfg.model.base)  # a missing base fails here, before any work
            texts, labels, parents, subs = norm["train"], train_y, train_ctx, train_sub
            families = [str(ex.family) if ex.family else "" for ex in splits["train"]]
            weights = _real_weights(cfg, splits["train"]) if cfg.train.real_weight != 1.0 else None
            unlabeled_rows = 0
            if cfg.train.long_mix > 0:  # window-like rows (training/long_mix.py)
                from training.long_mix import long_mixes

                mixed = long_mixes(texts, labels, [ex.lang for ex in splits["train"]], cfg.train.long_mix,
                                   cfg.train.seed, subtypes=subs, contexts=parents,
                                   origins=[ex.extra.get("origin") for ex in splits["train"]],
                                   neutral_share=cfg.train.long_mix_neutral_share)
                texts, labels = [*texts, *mixed.texts], [*labels, *mixed.labels]
                parents = None if parents is None else [*parents, *([None] * len(mixed.texts))]
                subs = None if subs is None else [*subs, *mixed.subtypes]
                families = [*families, *([""] * len(mixed.texts))]
                weights = None if weights is None else [*weights, *([1.0] * len(mixed.texts))]
                log(f"long-text mixes: {len(mixed.texts)} window-like training rows ("
                    + ", ".join(f"{k} {v}" for k, v in mixed.kinds.items()) + ")")
            if cfg.distill.unlabeled:  # unlabelled posts: the student learns the teacher's scores on them
                from training.distill import load_unlabeled

                extra_texts, kept = load_unlabeled(cfg.distill.unlabeled, cfg.data.text_field,
                                                   {*norm["train"], *norm["dev"], *norm["test"]}, normalize)
                log(f"distillation: {kept['kept']} unlabelled rows from {len(cfg.distill.unlabeled)} file(s) "
                    f"({kept['in_other_splits']} in train/dev/test and {kept['repeats']} repeats dropped, "
                    f"{kept['bad_rows']} bad rows skipped)" + "".join(f"\n  {p}" for p in kept["problems"]))
                texts, labels = [*texts, *extra_texts], [*labels, *([-100] * len(extra_texts))]
                parents = None if parents is None else [*parents, *([None] * len(extra_texts))]
                subs = None if subs is None else [*subs, *([-100] * len(extra_texts))]
                families = [*families, *([""] * len(extra_texts))]
                weights = None if weights is None else [*weights, *([1.0] * len(extra_texts))]
                unlabeled_rows = kept["kept"]
            res = finetune(cfg, texts, labels, norm["dev"], ys["dev"].tolist(), progress=progress,
                           train_contexts=parents, dev_contexts=ctx["dev"], train_subtypes=subs,
                           checkpoint=checkpoint_dir(out), resume=resume, log=log, train_families=families,
                           train_weights=weights)
            used_checkpoint = checkpoint_dir(out) if res.checkpoint_used else None
            history = res.history
            extra = {"best_epoch": res.best_epoch, "finetune_seconds": res.seconds, "train_precision": res.precision}
            if cfg.distill.teacher:
                extra["distill"] = {"teacher": cfg.distill.teacher, "teacher_version": _teacher_version(
                    cfg.distill.teacher), "unlabeled_rows": unlabeled_rows, "layers": cfg.model.layers or None}
            half = cfg.export.torch_weights == "fp16"
            if half:  # before anything scores or exports the model: every file then holds the same numbers
                round_to_fp16(res.model)
            if subs is not None and cfg.train.subtype_refit:  # label scores stay exactly as fine-tuned
                extra["subtype_refit"] = _refit_subtypes(res, cfg, texts, labels, parents, subs, splits["dev"],
                                                         norm["dev"], ctx["dev"], log)
                if half:
                    round_to_fp16(res.model)
            if not cfg.export.onnx:  # with ONNX, calibration is fitted on the served graph's scores below
                dev_logits = predict_logits(res.model, res.tokenizer, norm["dev"], cfg.model.max_length,
                                            contexts=ctx["dev"])
            res.model.save_pretrained(tmp, **({"state_dict": fp16_state_dict(res.model)} if half else {}))
            res.tokenizer.save_pretrained(tmp)
            _drop_tokenizer_padding(tmp / "tokenizer.json")
            if cfg.model.linear_blend > 0:
                blend = _fit_blend(cfg, tmp, splits["train"], norm["train"], train_y, train_ctx, log,
                                   with_subtypes=with_head)
        if cfg.model.kind == "linear" or not cfg.export.onnx:
            cal = calibrate(dev_logits, ys["dev"], temperature=cfg.calibration.temperature,
                            thresholds=cfg.calibration.thresholds)
        else:  # fitted below on the served (ONNX) predictor's own probabilities, once it exists
            cal = {"temperature": 1.0, "thresholds": {}, "calibration": {}}
        data_files = [*cfg.data.train, *cfg.data.dev, *cfg.data.test]
        meta = ModelMeta(
            name=cfg.output.name, version=_version(cfg), kind=cfg.model.kind,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), labels=list(L.LABELS),
            label_schema_version=L.SCHEMA_VERSION, normaliser_version=NORMALISER_VERSION,
            base_model=None if cfg.model.kind == "linear" else _base_description(cfg),
            max_length=cfg.model.max_length if cfg.model.kind == "transformer" else None,
            window_stride=cfg.model.window_stride if cfg.model.kind == "transformer" else None,
            window_aggregation=cfg.model.window_aggregation,
            subtypes={k: list(v) for k, v in L.SUBTYPES.items()} if with_head else None, context=reads_context,
            linear_blend=blend,
            temperature=cal["temperature"], thresholds=cal["thresholds"], calibration=cal["calibration"],
            training_config=json.loads(cfg.model_dump_json()),
            data={"files": fingerprint(data_files), "rows": counts,
                  "labels": {name: {lab: int((ys[name] == i).sum()) for i, lab in enumerate(L.LABELS)}
                             for name in ys}},
            library_versions=library_versions(),
            metrics={"history": history, **extra})
        if cfg.model.kind == "transformer" and cfg.export.onnx:
            from training.export import export_onnx

            log("exporting ONNX" + (" + int8" if cfg.export.quantize else ""))
            meta.onnx = export_onnx(tmp, fuse=cfg.export.fuse, quantize=cfg.export.quantize,
                                    check_texts=norm["dev"], keep_fp32_onnx=cfg.export.keep_fp32_onnx,
                                    first_recipe=cfg.export.int8_first_recipe or None,
                                    per_node=cfg.export.int8_per_node, smooth=cfg.export.int8_smooth)
        write_meta(tmp, meta)

        predictor = load_predictor(tmp)
        real_dev = np.asarray([ex.extra.get("origin") == "real" for ex in splits["dev"]], dtype=bool)
        cal, profiles, default = fit_served_decisions(
            predictor, norm["dev"], ys["dev"], real_dev, cfg,
            fit_temperature=cfg.model.kind == "transformer" and cfg.export.onnx, fallback=cal, log=log,
            contexts=ctx["dev"])
        log(f"calibration: temperature {cal['temperature']:.3f}, thresholds {cal['thresholds']}, dev ECE "
            f"{cal['calibration'].get('ece_before', float('nan')):.3f} -> "
            f"{cal['calibration'].get('ece_after', float('nan')):.3f}")
        meta = update_meta(tmp, temperature=cal["temperature"], thresholds=cal["thresholds"],
                           calibration=cal["calibration"], profiles=profiles, default_profile=default)
        predictor = load_predictor(tmp)
        log(f"evaluating on test with the {predictor.backend} backend")
        sets = {"test": splits["test"], "dev": splits["dev"]}
        if len(cfg.data.test) > 1:  # each test file on its own too: the written split and the real-post part
            for path in cfg.data.test:
                sets[Path(path).stem] = [ex for ex in splits["test"] if ex.file == str(path)]
        field = cfg.data.context_field if reads_context else None
        scored: dict = {}
        result = evaluate_sets(predictor, sets, tmp / "eval", context_field=field, cache=scored)
        metrics = {"backend": predictor.backend, "history": history, **extra,
                   **{name: _brief(d) for name, d in result["datasets"].items()}}
        onnx_entry = dict(meta.onnx)
        if cfg.model.kind == "transformer" and meta.onnx:
            reference = load_predictor(tmp, "torch", verify=False)
            served = cached_probs(scored, splits["test"], field) if splits["test"] else None
            onnx_entry["parity"] = parity(reference, predictor, norm["test"], ys["test"], ctx["test"],
                                          candidate_probs=served)
            metrics["torch_test_macro_f1"] = onnx_entry["parity"]["reference_macro_f1"]
            log(f"ONNX {predictor.backend} vs torch on test: argmax agreement "
                f"{onnx_entry['parity']['label_agreement']:.4f}, macro-F1 {onnx_entry['parity']['macro_f1']:.4f} vs "
                f"{onnx_entry['parity']['reference_macro_f1']:.4f}")
        metrics["train_seconds"] = time.time() - started
        meta = update_meta(tmp, metrics=metrics, onnx=onnx_entry)
        write_model_card(tmp, meta, result)
        _replace_folder(tmp, out)
        if used_checkpoint is not None:  # the model is written: its run's checkpoint is no longer needed
            shutil.rmtree(used_checkpoint, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"wrote {out} in {time.time() - started:.0f}s: test macro-F1 {metrics['test']['macro_f1']:.3f}")
    return out


def _base_description(cfg: TrainConfig) -> str:
    """``model.base``, and for a student what it was made of: "e5-small (6 layers, distilled from models/default,
    starting from its layers)"."""
    parts = [f"{cfg.model.layers} layers"] if cfg.model.layers else []
    if cfg.distill.teacher:
        parts.append(f"distilled from {cfg.distill.teacher}"
                     + (", starting from its layers" if cfg.distill.init == "teacher" else ""))
    return f"{cfg.model.base} ({', '.join(parts)})" if parts else cfg.model.base


def _teacher_version(folder: str) -> str | None:
    from serving.artifact import ModelFolderError, read_meta

    try:
        return read_meta(Path(folder)).version
    except (OSError, ValueError, ModelFolderError):
        return None


def served_probs(predictor, texts: list[str], temperature: float, contexts: list | None = None) -> np.ndarray:
    """Probabilities of the served predictor (its backend, windows and aggregation) at a given temperature."""
    saved = predictor.meta.temperature
    predictor.meta = predictor.meta.model_copy(update={"temperature": temperature})
    try:
        if contexts is not None:
            return predictor.predict_proba(texts, normalized=True, contexts=contexts)
        return predictor.predict_proba(texts, normalized=True)
    finally:
        predictor.meta = predictor.meta.model_copy(update={"temperature": saved})


def fit_served_decisions(predictor, dev_texts: list[str], dev_y: np.ndarray, real_dev: np.ndarray,
                         cfg: TrainConfig, *, fit_temperature: bool, fallback: dict | None = None,
                         log=print, contexts: list | None = None) -> tuple[dict, dict, str | None]:
    """Temperature and threshold profiles fitted on what the service computes: the served backend's scores of each
    text's deciding window, scored once on dev. Returns (calibration, profiles, default profile name).

    At temperature 1 the served probabilities are a softmax of the deciding window's logits, so their logs are
    those logits up to a constant per text, which softmax ignores; the window chosen at T = 1 is kept for T.
    ``fallback``: the calibration to keep when the temperature is not fitted here (the linear model's).
    """
    logits = np.log(np.clip(served_probs(predictor, dev_texts, 1.0, contexts), 1e-12, None))
    if fit_temperature:
        cal = calibrate(logits, dev_y, temperature=cfg.calibration.temperature, thresholds=False)
        cal["calibration"]["fitted_on"] = f"dev, {predictor.backend} backend (as served)"
    else:
        cal = dict(fallback or {"temperature": predictor.meta.temperature, "thresholds": predictor.meta.thresholds,
                                "calibration": predictor.meta.calibration})
    profiles, default = {}, None
    if cfg.calibration.thresholds:
        profiles, default = choose_profiles(softmax(logits, cal["temperature"]), dev_y, real_dev)
        cal["thresholds"] = profiles[default]["thresholds"]
        for name, prof in profiles.items():
            m = prof["metrics"]
            log(f"profile {name}: thresholds {prof['thresholds']}, review band {prof['review_band']}, "
                f"target met on dev: {m['target_met_on_dev']}; "
                + "; ".join(f"{part} P {v['extremist_precision']:.3f} R {v['extremist_recall']:.3f} "
                            f"neutral flagged {v['neutral_flagged']:.3f}" for part, v in m.items()
                            if isinstance(v, dict)))
    return cal, profiles, default


def _brief(d: dict) -> dict:
    keep = ("n", "macro_f1", "accuracy", "per_label", "per_lang", "per_kind", "per_origin", "confusion", "ece",
            "flagged_rate", "user", "per_profile")
    return {k: d[k] for k in keep if k in d}


def parity(reference, candidate, texts: list[str], y: np.ndarray, contexts: list | None = None,
           candidate_probs: np.ndarray | None = None) -> dict:
    """How far ``candidate`` (ONNX) departs from ``reference`` (torch) on the same normalised texts.
    ``candidate_probs``: the candidate's probabilities of these texts where already computed (training passes the
    test evaluation's, so the served graph scores the test rows once)."""
    from sklearn.metrics import f1_score

    kw = {"contexts": contexts} if contexts is not None else {}
    p_ref = reference.predict_proba(texts, normalized=True, **kw)
    p_can = (candidate.predict_proba(texts, normalized=True, **kw) if candidate_probs is None
             else np.asarray(candidate_probs))
    th = reference.meta.thresholds
    lab_ref, lab_can = decide(p_ref, th), decide(p_can, th)
    present = sorted(set(y.tolist()))
    return {"n": len(texts), "backend": candidate.backend,
            "argmax_agreement": float((p_ref.argmax(1) == p_can.argmax(1)).mean()) if len(texts) else 1.0,
            "label_agreement": float((lab_ref == lab_can).mean()) if len(texts) else 1.0,
            "max_abs_prob_diff": float(np.abs(p_ref - p_can).max()) if len(texts) else 0.0,
            "reference_macro_f1": float(f1_score(y, lab_ref, labels=present, average="macro", zero_division=0)),
            "macro_f1": float(f1_score(y, lab_can, labels=present, average="macro", zero_division=0))}


def _drop_tokenizer_padding(path: Path) -> None:
    """Saved tokenizers may carry fixed padding to 128 (PERF_NOTES trap 2); the folder's copy pads per batch."""
    if not path.is_file():
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("padding") or data.get("truncation"):
        data["padding"], data["truncation"] = None, None
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _replace_folder(tmp: Path, out: Path) -> None:
    tmp.chmod(0o755)  # mkdtemp makes it private; a model folder is meant to be read by the service user too
    for path in tmp.rglob("*"):  # some writers (safetensors, the meta) create their files 0600
        path.chmod(0o755 if path.is_dir() else 0o644)
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def refit_profiles(folder: str | Path, cfg: TrainConfig, *, log=print) -> ModelMeta:
    """Re-choose temperature and threshold profiles of a trained folder on the config's dev files (no retraining):
    what training does after export, for a changed dev set or a changed profile rule."""
    folder = Path(folder)
    dev = load_many(cfg.data.dev, FieldMap.from_config(cfg.data), cfg.data.format)
    predictor = load_predictor(folder)
    real = np.asarray([ex.extra.get("origin") == "real" for ex in dev], dtype=bool)
    cal, profiles, default = fit_served_decisions(
        predictor, [normalize(ex.text) for ex in dev], np.asarray([ex.label_id for ex in dev]), real, cfg,
        fit_temperature=predictor.meta.kind == "transformer", log=log,
        contexts=contexts_of(dev, cfg) if predictor.meta.context else None)
    return update_meta(folder, temperature=cal["temperature"], calibration=cal["calibration"],
                       thresholds=cal["thresholds"], profiles=profiles, default_profile=default)
