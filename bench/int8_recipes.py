"""int8 recipes side by side: speed, agreement with fp32 and macro-F1 of each graph of one fine-tuned model.

    python bench/int8_recipes.py --model models/default [--recipes sensitive_0,sensitive_3,all_ffn] [--n-speed 600]
                                 [--smooth]

The model folder's torch weights are exported again to a fused fp32 ONNX graph in a scratch copy; the MatMuls are
ranked by their int8 error on dev texts (``training.export.sensitivity_ranking``, as training does); then every
recipe asked for is quantised and measured on the same texts in one run (with ``--smooth``, each recipe also on the
fp32 graph with its activation outliers moved into the weights, ``training.export.smooth_activations``, as
``smooth:<recipe>``; ``smooth:sensitive_<k>`` keeps the k worst nodes of the smoothed graph):

- dev argmax agreement with the fp32 graph (the export's bar: 0.995) and on the test split and its real-post part;
- macro-F1 with the folder's served thresholds (default profile) on the written test split and the real-post part,
  and its loss against fp32 (issue 13: <= 0.005);
- posts/s at batch 32 on ``--n-speed`` test posts, and one-post latency (p50) on 100 posts, measured round-robin
  (every graph once per round, three rounds, median) so machine drift hits all of them alike;
- size of the int8 file and how many MatMuls it keeps in fp32.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from serving import labels as L  # noqa: E402
from serving.artifact import load_meta  # noqa: E402
from serving.predictor import OnnxPredictor  # noqa: E402
from serving.text import normalize  # noqa: E402

DEFAULT_RECIPES = "shipped,sensitive_0,sensitive_3,sensitive_6,sensitive_12,ffn_out,all_ffn,all_ffn+attn_out"
GRAPHS = ("model.onnx", "model.int8.onnx")


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def macro_f1(gold: list[str], pred: list[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, labels=list(L.LABELS), average="macro", zero_division=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--recipes", default=DEFAULT_RECIPES,
                    help="comma-separated recipe names (training/export.py), 'shipped' = the folder's own")
    ap.add_argument("--n-speed", type=int, default=600)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--smooth", action="store_true",
                    help="also quantise each recipe from the smoothed fp32 graph (smooth:<recipe>)")
    args = ap.parse_args()
    src = Path(args.model)
    if not (src / "model.safetensors").is_file():
        sys.exit(f"{src} has no model.safetensors: this bench re-exports from the torch weights of a transformer "
                 "folder (train one with `make train`)")
    from onnxruntime.quantization import QuantType, quantize_dynamic
    import onnx

    from training.export import SENSITIVE_KEEP, export_onnx, int8_recipes, sensitivity_ranking, smooth_activations

    meta = load_meta(src)
    shipped = (meta.onnx.get("int8_recipe") or {}).get("name")
    wanted = [shipped if r == "shipped" else r for r in args.recipes.split(",") if r]
    wanted = list(dict.fromkeys(r for r in wanted if r))
    data = {name: rows(ROOT / "data/labeled" / f"{name}.jsonl") for name in ("dev", "test", "test.real")}
    texts = {name: [normalize(r["text"]) for r in rs] for name, rs in data.items()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "m"
        shutil.copytree(src, work, ignore=shutil.ignore_patterns(*GRAPHS, "eval"))
        t0 = time.perf_counter()
        export_onnx(work, quantize=False)
        fp32 = work / "model.onnx"
        print(f"fp32 export {time.perf_counter() - t0:.0f} s")
        ranking = []
        if any(r.startswith("sensitive_") for r in wanted):
            t0 = time.perf_counter()
            ranking = sensitivity_ranking(fp32, work, texts["dev"])
            print(f"sensitivity ranking {time.perf_counter() - t0:.0f} s; worst MatMuls: "
                  + ", ".join(f"{n.replace('/inner/', '').replace('/MatMul', '')} {e:.4f}" for n, e in ranking[:6]))
        smoothed = work / "model.smooth.onnx"
        if args.smooth:
            t0 = time.perf_counter()
            info = smooth_activations(fp32, work, texts["dev"], smoothed)
            print(f"smoothing {time.perf_counter() - t0:.0f} s: {info}")
        smooth_ranking = []
        if args.smooth and any(r.startswith("sensitive_") for r in wanted):  # ranked again: smoothing moves errors
            smooth_ranking = sensitivity_ranking(smoothed, work, texts["dev"])
        config = json.loads((work / "config.json").read_text())
        recipes = dict(int8_recipes(fp32, config["num_hidden_layers"]))
        recipes.update({f"sensitive_{k}": [n for n, _ in ranking[:k]] for k in SENSITIVE_KEEP})
        graphs = {"fp32": (fp32, None)}
        for name in wanted:
            if name not in recipes:
                sys.exit(f"unknown recipe {name!r}; choose from {', '.join(recipes)}")
            keep = recipes[name]
            for source, label in [(fp32, name)] + ([(smoothed, f"smooth:{name}")] if args.smooth else []):
                if label.startswith("smooth:sensitive_"):
                    keep = [n for n, _ in smooth_ranking[:int(name.split("_")[1])]]
                out = work / f"int8_{label.replace('+', '_').replace(':', '_')}.onnx"
                quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, per_channel=True,
                                 nodes_to_exclude=keep, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
                graphs[label] = (out, len(keep))
        predictors = {}
        for name, (path, _) in graphs.items():
            key = "fp32" if name == "fp32" else "int8"
            m = meta.model_copy(update={"onnx": {key: path.name}})
            predictors[name] = OnnxPredictor(work, m, quantized=key == "int8", batch_size=32, threads=args.threads)
        # Quality: argmax agreement with fp32 (dev: the export's check), served labels' macro-F1.
        argmax, served = {}, {}
        for name, p in predictors.items():
            argmax[name] = {s: p.predict_proba(texts[s], normalized=True).argmax(1) for s in texts}
            served[name] = {s: [x.label for x in p.predict([r["text"] for r in data[s]])] for s in ("test", "test.real")}
        gold = {s: [r["label"] for r in data[s]] for s in ("test", "test.real")}
        # Speed, round-robin.
        speed_texts = [r["text"] for r in (data["test"] + data["test.real"])][: args.n_speed]
        one = speed_texts[:100]
        for p in predictors.values():
            p.predict(speed_texts[:32])
        rate = {n: [] for n in predictors}
        lat = {n: [] for n in predictors}
        for _ in range(3):
            for name, p in predictors.items():
                t0 = time.perf_counter()
                p.predict(speed_texts)
                rate[name].append(len(speed_texts) / (time.perf_counter() - t0))
                times = []
                for text in one:
                    t0 = time.perf_counter()
                    p.predict([text])
                    times.append(time.perf_counter() - t0)
                lat[name].append(statistics.median(times) * 1000)
        f1_ref = {s: macro_f1(gold[s], served["fp32"][s]) for s in gold}
        print(f"\n{'graph':30} {'fp32 MatMuls':>12} {'MB':>5} {'agree dev':>9} {'test':>6} {'real':>6} "
              f"{'F1 test':>8} {'(loss)':>7} {'F1 real':>8} {'(loss)':>7} {'posts/s':>8} {'1-post ms':>9} {'x fp32':>6}")
        base_rate = statistics.median(rate["fp32"])
        for name, (path, kept) in graphs.items():
            agree = {s: float((argmax[name][s] == argmax["fp32"][s]).mean()) for s in texts}
            f1 = {s: macro_f1(gold[s], served[name][s]) for s in gold}
            r = statistics.median(rate[name])
            print(f"{name:30} {'all' if kept is None else kept:>12} {path.stat().st_size / 1e6:5.0f} "
                  f"{agree['dev']:9.4f} {agree['test']:6.4f} {agree['test.real']:6.4f} "
                  f"{f1['test']:8.4f} {f1_ref['test'] - f1['test']:7.4f} {f1['test.real']:8.4f} "
                  f"{f1_ref['test.real'] - f1['test.real']:7.4f} {r:8.1f} {statistics.median(lat[name]):9.1f} "
                  f"{r / base_rate:6.2f}")
        print(f"\nshipped recipe of {src}: {shipped}; rows: dev {len(texts['dev'])}, test {len(texts['test'])}, "
              f"test.real {len(texts['test.real'])}; speed on {len(speed_texts)} posts, threads "
              f"{args.threads or os.cpu_count()}")


if __name__ == "__main__":
    main()
