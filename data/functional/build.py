"""Build the functional test suite (``data/functional/<lang>.jsonl``) from templates and hand-written cases.

Run from the repository root: ``.venv/bin/python data/functional/build.py``. The output is deterministic (seeded),
so rebuilding without changing ``cases/*.py`` rewrites the same files.

Each case module (``cases/en.py``, ``cases/ur.py``, ``cases/roman_ur.py``) defines:

- ``GROUPS``: group key -> slot values (plural, oblique, self-description, neighbour phrase, ...). Templates use
  ``{slot}``; ``[[masc|fem]]`` picks the form agreeing with the group's grammatical gender (``fem`` slot).
- ``TEMPLATES``: functionality -> list of templates, expanded for every group not in ``SKIP`` of that
  functionality.
- ``HAND``: functionality -> hand-written cases, each a string or ``(text, group)``.
- ``vary(text, rng)`` (optional): native spelling variation applied to a share of templated rows.

The expected label and kind of each functionality live in ``FUNCTIONALITIES`` below, and follow
``data/labeled/GUIDELINES.md``. Extremist rows carry rhetoric only (GUIDELINES §6).
"""

from __future__ import annotations

import json
import random
import re
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
E, C, N = "extremist", "counter_narrative", "neutral"
LANGS = ("en", "ur", "roman_ur")
GROUPS = ("shia", "sunni", "ahmadi", "hazara", "baloch", "pashtun", "sindhi", "muhajir", "punjabi", "christian",
          "hindu", "sikh", "afghan_refugee", "women", "transgender", "state")

#: functionality -> (expected label, kind, one-line description)
FUNCTIONALITIES: dict[str, tuple[str, str, str]] = {
    # hate against a group (templated over groups)
    "dehumanisation": (E, "dehumanisation", "a group described as vermin, disease, insects"),
    "derogation": (E, "derogation", "negative stereotype or contempt for a group, no slur"),
    "incitement": (E, "incitement", "call for violence or expulsion against a group, no slur"),
    "threat": (E, "incitement", "direct threat against a group"),
    "justification": (E, "justification", "violence against a group excused ('they deserved it')"),
    "hate_question": (E, "derogation", "derogation put as a question"),
    "hate_disclaimer": (E, "derogation", "'I'm not against X, but...' followed by hate"),
    "hate_negated_positive": (E, "derogation", "hate as a negated positive ('will never be real ...')"),
    "hate_obfuscated": (E, "dehumanisation", "hate with leetspeak, spaced or masked words"),
    # counter-speech about a group (templated)
    "counter_quotes_hate": (C, "quotes_extremist", "quotes a hateful claim about a group to reject it"),
    "counter_references_hate": (C, "community_cohesion", "refers to hate against a group without quoting it"),
    "counter_negation": (C, "debunking", "'X are not ...' rebutting a stereotype"),
    # neutral mentions of a group (templated)
    "identity_neutral": (N, "identity_mention", "neutral statement mentioning a group"),
    "identity_positive": (N, "identity_mention", "positive statement about a group"),
    "identity_self": (N, "identity_mention", "a member describing themselves"),
    "question_neutral": (N, "identity_mention", "an ordinary question about a group"),
    "violence_words_objects": (N, "nonviolent_violence_words", "violent words aimed at objects next to a group"),
    # hand-written
    "glorification": (E, "glorification", "praise or blessing of attackers and attacks"),
    "glorification_denied_label": (E, "glorification", "'not a terrorist, a ghazi': denial that praises"),
    "recruitment_coded": (E, "recruitment", "coded recruitment (caravan, inbox, the brothers)"),
    "hate_spelling_variants": (E, "derogation", "hate with group-name or word spelling variants"),
    "hate_code_mixed": (E, "derogation", "hate in code-mixed English/Urdu"),
    "slur_masked": (E, "derogation", "a masked slur used to derogate (R@fzi, Q@diani, kh*sra, ch**ra)"),
    "counter_mocks_extremists": (C, "quotes_extremist", "mocks recruiters and propaganda"),
    "counter_religious_rebuttal": (C, "religious_rebuttal", "answers an extremist claim with scripture"),
    "counter_sarcasm": (C, "quotes_extremist", "sarcasm aimed at extremists"),
    "counter_code_mixed": (C, "debunking", "counter-speech in code-mixed English/Urdu"),
    "counter_slur_quoted": (C, "quotes_extremist", "quotes a masked slur in order to reject it"),
    "survivor_voice": (C, "survivor_voice", "victims and their families"),
    "counter_negated_support": (C, "debunking", "disavowal that argues against the militants"),
    "news_attack": (N, "news_report", "news of an attack or operation"),
    "news_claim_reported": (N, "news_report", "news reporting a claim of responsibility"),
    "analysis": (N, "policy_analysis", "analysis and research on extremism"),
    "religious_inner_jihad": (N, "religious_content", "jihad as inner struggle, shaheed for victims"),
    "religious_sermon_verse": (N, "religious_content", "sermons and verses in context"),
    "spelling_variants_religious": (N, "religious_content", "kafir/kaafir/kafer and friends in ordinary use"),
    "sarcasm_neutral": (N, "political_grievance", "sarcasm at prices or the state, no violence"),
    "state_grievance": (N, "political_grievance", "anger at the state, army or police without violence"),
    "violence_words_sport": (N, "nonviolent_violence_words", "violent words in sport, games, exams"),
    "profanity_no_group": (N, "everyday", "swearing with no target group"),
    "reclaimed_ingroup": (N, "identity_mention", "reclaimed and in-group terms used by members"),
    "obfuscation_benign": (N, "nonviolent_violence_words", "leetspeak and tricks in harmless posts"),
    "code_mixed_neutral": (N, "everyday", "ordinary code-mixed posts"),
    "peace_greeting": (N, "everyday", "generic peace greetings with nothing countered"),
}

_GENDER = re.compile(r"\[\[([^|\]]*)\|([^\]]*)\]\]")


def _fill(template: str, slots: dict) -> str:
    text = _GENDER.sub(lambda m: m.group(2) if slots.get("fem") else m.group(1), template)
    return text.format(**slots)


def build_language(lang: str) -> list[dict]:
    mod = runpy.run_path(str(HERE / "cases" / f"{lang}.py"))
    groups, templates, hand = mod["GROUPS"], mod["TEMPLATES"], mod["HAND"]
    skip = mod.get("SKIP", {})
    vary = mod.get("vary")
    rng = random.Random(f"counterpoint-functional-{lang}")
    rows: list[dict] = []
    seen: set[str] = set()
    unknown = (set(templates) | set(hand)) - set(FUNCTIONALITIES)
    if unknown:
        sys.exit(f"{lang}: unknown functionalities {sorted(unknown)}")
    if set(groups) != set(GROUPS):
        sys.exit(f"{lang}: GROUPS must cover {GROUPS}; differs by {set(GROUPS) ^ set(groups)}")

    def add(func: str, text: str, group: str | None, how: str) -> None:
        text = text.strip()
        if text in seen:
            return
        seen.add(text)
        label, kind, _ = FUNCTIONALITIES[func]
        row = {"id": "", "text": text, "label": label, "lang": lang, "kind": kind, "source": "counterpoint-functional",
               "origin": "written", "functionality": func}
        if group:
            row["group"] = group
        row["case"] = how
        rows.append(row)

    for func, temps in templates.items():
        for g in GROUPS:
            if g in skip.get(func, ()):
                continue
            for k, t in enumerate(temps):
                text = _fill(t, groups[g])
                if vary and rng.random() < 0.35:
                    text = vary(text, rng)
                add(func, text, g, f"template-{k + 1}")
    for func, cases in hand.items():
        for case in cases:
            text, group = (case, None) if isinstance(case, str) else case
            add(func, text, group, "hand")
    for i, row in enumerate(rows, 1):
        row["id"] = f"fs-{lang}-{i:04d}"
    return rows


def main() -> None:
    total = 0
    for lang in LANGS:
        rows = build_language(lang)
        with open(HERE / f"{lang}.jsonl", "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        funcs = {r["functionality"] for r in rows}
        print(f"{lang}: {len(rows)} cases, {len(funcs)} functionalities")
        total += len(rows)
    print(f"total {total}")


if __name__ == "__main__":
    main()
