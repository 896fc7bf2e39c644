"""Draw the annotation sample of real posts from the background sets (reproducible, seeded).

Usage: python data/real/make_sample.py --background DIR [--model DIR] [--out data/real/work]

Two parts per source, kept apart in every record (`part`):
- ``random``: a uniform random sample of distinct posts. It tells the true prevalence and what ordinary posts look
  like; it is what dev and test draw their real-post part from.
- ``surfaced``: posts picked on purpose because they are where the hard negatives and the rare positives are:
  what a model flags or is unsure about (``--model``: p(extremist) >= 0.3, or top probability < 0.5), posts that
  name a group, use religious or violent words or insult someone, and the source's own "hate"/"negative" hints.
  Each surfaced record says why it was picked (`reason`).
The source's own labels are used only to pick rows, never as our labels.

Later waves (their work files are committed as drawn): ``roman_ur2.jsonl`` is 1,403 more Roman Urdu posts surfaced
for rare positives (the 900 highest p(extremist) of a linear model trained on the written corpus, plus 503 with
group, religion or violence words), ``translit2.jsonl`` 260 Roman Urdu posts written out in Urdu script by a second
annotator (first-pass non-neutral or noted posts, topped up from the surfaced part), ``relabel_*.jsonl`` first-pass
rows rechecked after GUIDELINES §11 was written; ``en3.jsonl`` and ``roman_ur3.jsonl`` are 350 + 350 posts the
wave-8 default flagged or put in its review band (``surface_more.py``; all in train). A seeded 20% of every source (whole
CrowdCounter threads) is marked `double: true`: a second annotator labels those rows without seeing the first labels.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

SEED = 2026
RU_WORDS = re.compile(
    r"\b(kafir|kaafir|kafar|shia|shiya|sunni|qadiani|qadyani|ahmadi|mirzai|hindu|hindo|isai|esai|christian|sikh|"
    r"yahudi|yahood|jihad|jehad|shaheed|shahid|taliban|ttp|dehshat|dahshat|dehshatgard|dhamaka|blast|fouj|fauj|army|"
    r"police|maro|maaro|maar|qatl|katl|jalao|jala|khoon|pathan|pathaan|pashtun|pakhtun|baloch|balouch|sindhi|punjabi|"
    r"muhajir|mohajir|afghan|molvi|maulvi|mulla|mullah|islam|gustakh|ghaddar|gaddar|ghaddaar|ghadar|harami|kutta|"
    r"kutte|kuttay|lanat|laanat|beghairat|zaleel|jahil|jaahil|india|hindustan|modi|yahodi|kafiron|murtad|wajib|"
    r"shariat|sharia|khilafat|mujahid|mujahideen|inteha|badla|saza)\b", re.I)
EN_GROUP_WORDS = re.compile(
    r"\b(muslim|muslims|islam|jew|jews|jewish|black|blacks|white|whites|mexican|mexicans|immigrant|immigrants|"
    r"arab|arabs|asian|asians|gay|gays|queer|fag|fags|faggot|faggots|tranny|women|woman|girls|bitches|"
    r"nigger|niggers|nigga|niggas|wetback|wetbacks|spic|spics|chink|chinks|retard|retards|redneck|rednecks|"
    r"terrorist|terrorists|isis|jihad|kill|killed|shoot|hang|lynch|race|racist)\b", re.I)
UR_WORDS = re.compile(
    r"(اسلام|جہاد|شہید|کافر|شیعہ|سنی|احمدی|قادیانی|ہندو|عیسائی|سکھ|یہودی|طالبان|دہشت|دھماکہ|دھماکے|حملہ|حملے|فوج|قتل|"
    r"جنگ|پشتون|پٹھان|بلوچ|سندھی|پنجابی|مہاجر|افغان|مسجد|امام|خلافت|مجاہد|فرقہ|فسادات|بغاوت|شریعت)")


def read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def usable(text: str) -> bool:
    """Drop only exact junk: no letters at all, or fewer than 2 characters (CORPUS_PLAN §6)."""
    return len(text.strip()) >= 2 and any(ch.isalpha() for ch in text)


def distinct(rows: list[dict]) -> list[dict]:
    seen, out = set(), []
    for r in rows:
        key = " ".join(r["text"].lower().split())
        if key not in seen and usable(r["text"]):
            seen.add(key)
            out.append(r)
    return out


def model_scores(model: str | None, texts: list[str]):
    if not model:
        return None
    from serving.predictor import load_predictor

    return load_predictor(model).predict_proba(texts)


def split_parts(rows, n_random, n_surfaced, surfaced_pools, rng):
    """Random part first (uniform over all rows), then the surfaced part from the named pools, without repeats."""
    picked = {}
    for r in rng.sample(rows, n_random):
        picked[r["id"]] = {**r, "part": "random", "reason": "random"}
    quota = n_surfaced
    for reason, pool, share in surfaced_pools:
        pool = [r for r in pool if r["id"] not in picked]
        k = min(len(pool), round(n_surfaced * share), quota)
        for r in rng.sample(pool, k):
            picked[r["id"]] = {**r, "part": "surfaced", "reason": reason}
        quota -= k
    return list(picked.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--background", required=True, type=Path)
    ap.add_argument("--model", default=None, help="model folder used to surface flagged/unsure posts")
    ap.add_argument("--out", default=Path("data/real/work"), type=Path)
    args = ap.parse_args()
    rng = random.Random(SEED)
    args.out.mkdir(parents=True, exist_ok=True)

    def flagged_pool(rows):
        p = model_scores(args.model, [r["text"] for r in rows])
        if p is None:
            return []
        return [r for r, pr in zip(rows, p) if pr[0] >= 0.3 or pr.max() < 0.5]

    # Roman Urdu: 900 random + 800 surfaced.
    ru = distinct(read(args.background / "roman_urdu_uci.jsonl"))
    ru_sample = split_parts(ru, 900, 800, [
        ("model_flagged_or_unsure", flagged_pool(ru), 0.35),
        ("group_religion_violence_or_insult_words", [r for r in ru if RU_WORDS.search(r["text"])], 0.45),
        ("source_negative_sentiment", [r for r in ru if r.get("sentiment") == "negative"], 0.20)], rng)
    # English tweets: 800 random + 900 surfaced.
    en = distinct(read(args.background / "davidson_tweets.jsonl"))
    en_sample = split_parts(en, 800, 900, [
        ("source_hate_speech_hint", [r for r in en if r.get("davidson_class") == "hate_speech"], 0.45),
        ("model_flagged_or_unsure", flagged_pool(en), 0.30),
        ("group_or_violence_words", [r for r in en if EN_GROUP_WORDS.search(r["text"])], 0.25)], rng)
    # Urdu script (Wikipedia sentences): 400 random + 300 surfaced.
    ur = distinct(read(args.background / "dakshina_ur.jsonl"))
    ur_sample = split_parts(ur, 400, 300, [
        ("religion_sect_ethnicity_or_violence_words", [r for r in ur if UR_WORDS.search(r["text"])], 1.0)], rng)
    # Roman Urdu posts to transliterate into informal Urdu script: 200 from each part of the Roman Urdu sample.
    translit = (rng.sample([r for r in ru_sample if r["part"] == "random"], 200)
                + rng.sample([r for r in ru_sample if r["part"] == "surfaced"], 200))

    def keep(r, lang, source):
        out = {"id": r["id"], "text": r["text"], "lang": lang, "part": r["part"], "reason": r["reason"],
               "background": source}
        return out

    files = {
        "roman_ur": [keep(r, "roman_ur", "roman_urdu_uci") for r in ru_sample],
        "en": [keep(r, "en", "davidson_tweets") for r in en_sample],
        "ur": [keep(r, "ur", "dakshina_ur") for r in ur_sample],
        "translit": [keep(r, "roman_ur", "roman_urdu_uci") for r in translit],
    }
    # CrowdCounter: every post and every reply; a reply carries its parent post as context.
    cc = []
    for post in read(args.background / "crowdcounter_pairs.jsonl"):
        cc.append({"id": post["id"], "text": post["text"], "lang": "en", "part": "all", "reason": "crowdcounter_post",
                   "background": "crowdcounter_pairs", "thread": post["id"]})
        for j, rep in enumerate(post["replies"]):
            cc.append({"id": f"{post['id']}/r{j}", "text": rep["text"], "lang": "en", "part": "all",
                       "reason": "crowdcounter_reply", "background": "crowdcounter_pairs", "thread": post["id"],
                       "context": post["text"]})
    # Two halves (by thread) so two annotators can work side by side.
    files["crowdcounter_a"] = [r for r in cc if int(r["thread"].split("-")[1]) < 663]
    files["crowdcounter_b"] = [r for r in cc if int(r["thread"].split("-")[1]) >= 663]
    for name, rows in files.items():
        if name.startswith("crowdcounter"):
            threads = sorted({r["thread"] for r in rows})
            double = set(rng.sample(threads, round(0.2 * len(threads))))
            for r in rows:
                r["double"] = r["thread"] in double
        else:
            ids = [r["id"] for r in rows]
            double = set(rng.sample(ids, round(0.2 * len(ids))))
            for r in rows:
                r["double"] = r["id"] in double
        rng.shuffle(rows) if not name.startswith("crowdcounter") else None
        with (args.out / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{name}: {len(rows)} rows, {sum(r['double'] for r in rows)} double-labelled")


if __name__ == "__main__":
    main()
