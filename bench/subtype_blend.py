"""How much of the linear model's sub-type opinion to blend into the transformer's (``model.subtype_blend``, issue 15).

    python bench/subtype_blend.py --model models/default [--weights 0,0.2,0.3,0.4,0.5,0.6,0.7]

Copies the folder, gives the copy the linear sub-type rows (``training.pipeline.add_subtype_blend``: the folder's own
training rows, its linear features), scores every file once with the transformer and once with the linear model's
sub-type rows, and prints the sub-type accuracy of each mix (the label as served, balanced profile; a wrong label
counts as a wrong sub-type; in brackets where the label is right). Choose on the dev files, report test.
The label scores do not depend on the weight. Replies with a parent keep the transformer's sub-type, as served.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # the training config's data paths are relative to the repository

FILES = ["data/labeled/dev.jsonl", "data/labeled/dev.real.jsonl", "data/labeled/test.jsonl",
         "data/labeled/test.real.jsonl"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--weights", default="0,0.2,0.3,0.4,0.5,0.6,0.7")
    parser.add_argument("--data", action="append", help="files to score (default: written and real dev and test)")
    args = parser.parse_args()

    import numpy as np

    from serving.predictor import decide, load_predictor
    from serving.text import normalize
    from serving.profiles import default_profile_name, profiles_of
    from training.data import load_examples
    from training.evaluate import _score, subtype_metrics
    from training.pipeline import add_subtype_blend

    weights = [float(w) for w in args.weights.split(",")]
    with tempfile.TemporaryDirectory(prefix="subtype_blend.") as tmp:
        copy = Path(tmp) / "model"
        shutil.copytree(args.model, copy)
        add_subtype_blend(copy, 0.5)
        pred = load_predictor(copy)
        profiles = profiles_of(pred.meta)
        name = default_profile_name(pred.meta)
        thresholds = profiles[name].thresholds if profiles and name in profiles else pred.meta.thresholds
        rows = {}
        for path in args.data or FILES:
            examples, _ = load_examples(path)
            texts = [ex.text for ex in examples]
            ctx = [ex.extra.get("context") or None for ex in examples]
            ctx = ctx if any(ctx) else None
            pred.subtype_blend_weight = 0.0
            probs, model_subs = _score(pred, texts, ctx, 256)
            # the served mix adds the text's linear values to its deciding window's (chosen by the label scores,
            # which the weight does not move), so one transformer pass serves every weight; a reply with a parent
            # keeps the transformer's own
            linear_subs = pred.blend.decisions([normalize(t) for t in texts])[1]
            if ctx is not None:
                with_parent = np.asarray([c is not None for c in ctx])
                linear_subs[with_parent] = model_subs[with_parent]
            rows[Path(path).name] = (examples, decide(probs, thresholds), model_subs, linear_subs)
    print(f"sub-type accuracy, served label ({name} profile); in brackets where the label is right")
    print("weight  " + "  ".join(f"{k:>22s}" for k in rows))
    for w in weights:
        cells = []
        for examples, labels, model_subs, linear_subs in rows.values():
            m = subtype_metrics(examples, labels, (1 - w) * model_subs + w * linear_subs, pred.meta.subtypes)
            cells.append(f"{m['accuracy']:.3f} ({m['accuracy_where_label_right']:.3f})")
        print(f"{w:<6g}  " + "  ".join(f"{c:>22s}" for c in cells))


if __name__ == "__main__":
    main()
