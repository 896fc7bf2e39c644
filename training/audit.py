"""``counterpoint audit``: functional suite, robustness and bias audit of one model folder in one report.

Writes ``audit.json``, ``audit.md`` and ``functional_pass_rates.png`` into the output folder; with
``update_card`` it also stores ``audit.json`` in the model folder's ``eval/`` (not checksummed) and re-renders the
model card so the card shows the pass-rate table, the bias audit and the robustness summary.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from serving import labels as L
from training import bias, functional, robustness


def _probs(predictor, examples: Sequence, batch: int = 512) -> np.ndarray:
    probs = np.zeros((len(examples), len(L.LABELS)))
    texts = [ex.text for ex in examples]
    for s in range(0, len(texts), batch):
        probs[s:s + batch] = predictor.predict_proba(texts[s:s + batch])
    return probs


def run_audit(predictor, suite: Sequence, out_dir: str | Path, *, tests: dict[str, Sequence] | None = None,
              profile: str | None = None, perturbations: Sequence[str] | None = None, robustness_on_test: bool = True,
              plots: bool = True, log=print) -> dict:
    """Audit ``predictor`` on the functional ``suite`` (and labelled test files, ``{name: examples}``, whose rows
    that name a group feed the bias audit) and write the report."""
    from serving.predictor import decide
    from serving.profiles import resolve
    from training.evaluate import model_summary

    started = time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prof = resolve(predictor.meta, profile)
    log(f"scoring {len(suite)} functional cases")
    probs = _probs(predictor, suite)
    pred = decide(probs, prof.thresholds)
    per_func = functional.pass_rates(suite, pred)
    result = {"model": model_summary(predictor), "profile": prof.name, "thresholds": prof.thresholds,
              "functional": {"summary": functional.summary(per_func), "per_functionality": per_func,
                             "under_goal": [list(t) for t in functional.failing(per_func)]},
              "bias": {"functional": bias.audit_examples(suite, probs)}, "robustness": {}}
    for name, rows in (tests or {}).items():
        log(f"scoring {len(rows)} rows of {name} for the bias audit")
        result["bias"][name] = bias.audit_examples(rows, _probs(predictor, rows), use_group_field=False)
    chosen = robustness.select(perturbations)
    log(f"robustness: {len(chosen)} perturbations on the functional suite")
    result["robustness"]["functional"] = robustness.robustness_report(predictor, suite, chosen, prof.thresholds)
    for name, rows in (tests or {}).items() if robustness_on_test else ():
        log(f"robustness: {len(chosen)} perturbations on {name}")
        result["robustness"][name] = robustness.robustness_report(predictor, rows, chosen, prof.thresholds)
    result["seconds"] = time.time() - started
    (out_dir / "audit.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    if plots:
        functional.plot_pass_rates(per_func, out_dir / "functional_pass_rates.png", title=result["model"]["name"])
    (out_dir / "audit.md").write_text(render_report(result, plots=plots), encoding="utf-8")
    return result


def render_report(result: dict, *, plots: bool = True) -> str:
    m = result["model"]
    s = result["functional"]["summary"]
    lines = [f"# Audit of {m['name']} {m['version']}", "",
             f"Backend `{m['backend']}`, profile `{result['profile']}` (thresholds {json.dumps(result['thresholds'])}),"
             f" {result['seconds']:.0f}s.", "", "## Functional tests", ""]
    lines += functional.render_table(result["functional"]["per_functionality"], s["goal"])
    if plots:
        lines += ["", "![functional pass rates](functional_pass_rates.png)"]
    under = result["functional"]["under_goal"]
    lines += ["", f"Under {100 * s['goal']:.0f}% ({len(under)}): "
              + (", ".join(f"{f}/{g} {100 * r:.0f}%" for f, g, r in under) or "none") + ".", ""]
    lines += ["## Bias audit (Borkan et al. 2019 on p(extremist))", ""]
    for name, audit in result["bias"].items():
        lines += [f"### {name}", ""] + bias.render_table(audit) + [""]
    lines += ["## Robustness", ""]
    for name, rep in result["robustness"].items():
        lines += [f"### {name}", ""] + robustness.render_table(rep) + [""]
    return "\n".join(lines)


def card_section(audit: dict) -> list[str]:
    """The model card's view of an audit: pass-rate table, bias misses, robustness misses."""
    s = audit["functional"]["summary"]
    lines = ["## Functional tests, bias and robustness", "",
             f"Functional suite (`data/functional/`, issue 14), profile `{audit['profile']}`: pass rate per "
             "functionality and language (a case passes when the predicted label is its expected label).", ""]
    lines += functional.render_table(audit["functional"]["per_functionality"], s["goal"])
    for name, b in audit["bias"].items():
        lines += ["", f"Bias audit on {name} ({b['source']}):", ""] + bias.render_table(b)
    for name, rep in audit["robustness"].items():
        missed = [k for k, v in rep.items() if not v["meets_goal"]]
        worst = min(rep.items(), key=lambda kv: kv[1]["extremist"]["delta_points"] or 0.0) if rep else None
        lines += ["", f"Robustness on {name}: {len(rep) - len(missed)} of {len(rep)} perturbations meet the goal"
                  + (f"; missed: {', '.join(missed)}" if missed else "")
                  + (f"; largest extremist flag-rate drop {worst[1]['extremist']['delta_points']:+.1f} points "
                     f"({worst[0]})" if worst and worst[1]["extremist"]["delta_points"] is not None else "") + "."]
    lines += ["", "Full audit: `eval/audit.json` (and `audit.md` where `counterpoint audit` wrote it).", ""]
    return lines


def update_card(folder: str | Path, audit: dict) -> None:
    """Store ``audit`` as ``<folder>/eval/audit.json`` and re-render the folder's model card."""
    from serving.artifact import load_meta
    from training.modelcard import write_model_card

    folder = Path(folder)
    (folder / "eval").mkdir(exist_ok=True)
    (folder / "eval" / "audit.json").write_text(json.dumps(audit, indent=2, ensure_ascii=False), encoding="utf-8")
    metrics = folder / "eval" / "metrics.json"
    result = json.loads(metrics.read_text(encoding="utf-8")) if metrics.is_file() else None
    write_model_card(folder, load_meta(folder), result)
