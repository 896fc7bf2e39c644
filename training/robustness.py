"""Robustness: does a model keep its decisions when the text is disguised?

Each perturbation rewrites some words of a text the way evaders and ordinary typists do (leetspeak, spaced letters,
invisible characters, look-alike letters, elongation, emojis, Urdu diacritics and letter forms, Roman Urdu spelling
variants, script switching). The report compares, per perturbation, the share of expected-extremist cases flagged
and the share of expected-neutral cases flagged, before and after. Goal (issue 14): the extremist flag rate drops
by at most 5 points and the neutral flag rate rises by at most 2 points under every perturbation.

Perturbations are deterministic: the random choices are seeded by the perturbation name and the text.
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from serving import labels as L

#: Allowed change in flag rate, in points: extremist cases may lose at most this many ...
MAX_EXTREMIST_DROP = 5.0
#: ... and neutral cases may gain at most this many.
MAX_NEUTRAL_RISE = 2.0

_LATIN_WORD = re.compile(r"[A-Za-z]{4,}")
_ANY_WORD = re.compile(r"[^\W\d_]{4,}")
_ARABIC_WORD = re.compile(r"[\u0621-\u064a\u0671-\u06d3]{3,}")

_LEET = {"a": "@", "e": "3", "i": "1", "o": "0", "s": "$", "t": "7"}
_HOMO = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "i": "і", "k": "κ", "v": "ν",
         "A": "А", "E": "Е", "O": "О", "P": "Р", "C": "С", "H": "Н", "K": "К", "M": "М", "T": "Т", "B": "В"}
_ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")
_BIDI = ("\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
         "\u2069", "\u061c")
_EMOJI = ("🔥", "😂", "🙏", "💯", "👇", "🤲", "😡", "🇵🇰", "❤️", "👀")
_DIACRITICS = ("\u064e", "\u0650", "\u064f", "\u0651", "\u0652")  # zabar, zer, pesh, shadda, jazm
_URDU_FORMS = {"ک": "ك", "ہ": "ه"}

_ROMAN_VARIANTS = {
    "hai": ("hy", "he", "hae"), "hain": ("hen", "hn", "hein"), "nahi": ("nai", "nhi", "nahin", "nahee"),
    "kafir": ("kaafir", "kafer", "kaafer", "kaffir"), "kafiron": ("kaafiron", "kaferon"), "mein": ("me", "mai"),
    "kya": ("kia",), "karo": ("kro", "karoo"), "maaro": ("maro", "maaroo"), "khoon": ("khun",),
    "jihad": ("jehad", "jihaad"), "shaheed": ("shahid", "shaheid"), "ghaddar": ("gaddar", "ghadaar", "ghadar"),
    "dushman": ("dushmun", "dshmn"), "ke": ("k", "ky"), "sab": ("sb",), "hamesha": ("humesha", "hmesha"),
    "bimari": ("beemari", "bemari"), "lanat": ("laanat",), "nikalo": ("nikaalo", "nklo"), "safai": ("safayi",),
    "insaan": ("insan",), "pathan": ("pathaan", "pthan"), "shia": ("shiya", "shiah"), "ahmadi": ("ahmedi", "ehmadi"),
    "hindu": ("hindoo",), "isai": ("esai", "eesai"), "baloch": ("baluch", "balooch"), "sindhi": ("sindi",),
    "punjabi": ("panjabi",), "muhajir": ("mohajir", "muhajjir"), "aurtein": ("aurtain", "auratein"),
    "khawaja": ("khwaja", "kwaja"), "dehshatgard": ("dehshat gard", "dhshtgrd"), "qatl": ("qatal", "katal"),
    "qafila": ("qafla", "kafila"), "raha": ("rha",), "hoon": ("hun", "hu"), "bohat": ("bht", "bohot"),
    "bhi": ("b",), "kar": ("kr",), "mat": ("mt",), "inko": ("inhe", "inhein"), "unko": ("unhe", "unhein"),
    "gunah": ("gunaah",), "jannat": ("jannut",), "mulk": ("mulq",), "sirf": ("sirf", "srf"),
}
_ROMAN_URDU_SCRIPT = {
    "hai": "ہے", "hain": "ہیں", "nahi": "نہیں", "ko": "کو", "ke": "کے", "ki": "کی", "ka": "کا", "se": "سے",
    "mein": "میں", "aur": "اور", "ye": "یہ", "wo": "وہ", "sab": "سب", "log": "لوگ", "kafir": "کافر",
    "ghaddar": "غدار", "bimari": "بیماری", "insaan": "انسان", "mulk": "ملک", "maaro": "مارو", "nikalo": "نکالو",
    "khoon": "خون", "jihad": "جہاد", "shaheed": "شہید", "bhai": "بھائی", "dushman": "دشمن", "qafila": "قافلہ",
    "jannat": "جنت", "allah": "اللہ", "lanat": "لعنت", "safai": "صفائی", "deemak": "دیمک", "chor": "چور",
    "shia": "شیعہ", "ahmadi": "احمدی", "hindu": "ہندو", "sikh": "سکھ", "baloch": "بلوچ", "pathan": "پٹھان",
    "sindhi": "سندھی", "punjabi": "پنجابی", "muhajir": "مہاجر", "hazara": "ہزارہ", "aurtein": "عورتیں",
    "police": "پولیس", "dehshatgard": "دہشت گرد", "kabhi": "کبھی", "hum": "ہم", "mat": "مت", "karo": "کرو",
    "gunah": "گناہ", "nafrat": "نفرت", "hota": "ہوتا", "hote": "ہوتے", "tha": "تھا", "kuch": "کچھ", "koi": "کوئی",
}
_URDU_ROMAN_SCRIPT = {v: k for k, v in _ROMAN_URDU_SCRIPT.items() if " " not in v}


def _rng(name: str, text: str) -> random.Random:
    return random.Random(zlib.crc32(f"{name}\x00{text}".encode("utf-8")))


def _pick(matches: list, rng: random.Random, share: float = 0.35) -> list:
    """About ``share`` of the candidate words (at least one), in text order."""
    if not matches:
        return []
    k = max(1, round(share * len(matches)))
    return sorted(rng.sample(matches, min(k, len(matches))), key=lambda m: m.start())


def _rewrite(text: str, pattern: re.Pattern, fn: Callable[[str, random.Random], str], rng: random.Random,
             share: float = 0.35) -> str:
    chosen = _pick(list(pattern.finditer(text)), rng, share)
    out, last = [], 0
    for m in chosen:
        out += [text[last:m.start()], fn(m.group(0), rng)]
        last = m.end()
    return "".join(out) + text[last:]


def leetspeak(text: str, rng: random.Random) -> str:
    def word(w, r):
        chars = list(w)
        spots = [i for i, c in enumerate(chars) if c.lower() in _LEET]
        for i in r.sample(spots, max(1, len(spots) // 2)) if spots else []:
            chars[i] = _LEET[chars[i].lower()]
        return "".join(chars)
    return _rewrite(text, _LATIN_WORD, word, rng)


def spaced_letters(text: str, rng: random.Random) -> str:
    return _rewrite(text, _ANY_WORD, lambda w, r: " ".join(w), rng, share=0.2)


def punctuation_between(text: str, rng: random.Random) -> str:
    return _rewrite(text, _ANY_WORD, lambda w, r: r.choice(".-_*").join(w), rng, share=0.2)


def zero_width(text: str, rng: random.Random) -> str:
    def word(w, r):
        i = r.randrange(1, len(w))
        return w[:i] + r.choice(_ZERO_WIDTH) + w[i:]
    return _rewrite(text, _ANY_WORD, word, rng, share=0.5)


def bidi_controls(text: str, rng: random.Random) -> str:
    def word(w, r):
        i = r.randrange(1, len(w))
        return r.choice(_BIDI) + w[:i] + r.choice(_BIDI) + w[i:]
    return _rewrite(text, _ANY_WORD, word, rng, share=0.5)


def homoglyphs(text: str, rng: random.Random) -> str:
    def word(w, r):
        spots = [i for i, c in enumerate(w) if c in _HOMO]
        chars = list(w)
        for i in r.sample(spots, max(1, len(spots) // 2)) if spots else []:
            chars[i] = _HOMO[chars[i]]
        return "".join(chars)
    return _rewrite(text, _LATIN_WORD, word, rng, share=0.5)


def elongation(text: str, rng: random.Random) -> str:
    def word(w, r):
        i = r.randrange(1, len(w))
        return w[:i] + w[i - 1] * r.randint(3, 6) + w[i:]
    return _rewrite(text, _ANY_WORD, word, rng, share=0.3)


def emoji_insertion(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    for _ in range(max(1, len(words) // 5)):
        words.insert(rng.randrange(0, len(words) + 1), rng.choice(_EMOJI))
    return " ".join(words)


def urdu_diacritics(text: str, rng: random.Random) -> str:
    def word(w, r):
        i = r.randrange(1, len(w) + 1)
        return w[:i] + r.choice(_DIACRITICS) + w[i:]
    return _rewrite(text, _ARABIC_WORD, word, rng, share=0.5)


def urdu_letter_forms(text: str, rng: random.Random) -> str:
    forms = {k: v for k, v in _URDU_FORMS.items() if rng.random() < 0.5} | {"ی": "ي"}
    return text.translate(str.maketrans(forms))


_ROMAN_WORD = re.compile(r"[A-Za-z]+")


def roman_spelling(text: str, rng: random.Random) -> str:
    def word(m):
        w = m.group(0)
        options = _ROMAN_VARIANTS.get(w.lower())
        if not options or rng.random() < 0.3:
            return w
        v = rng.choice(options)
        return v.capitalize() if w[0].isupper() else v
    return _ROMAN_WORD.sub(word, text)


def script_switch(text: str, rng: random.Random) -> str:
    """Roman Urdu words into Urdu script, or Urdu words into Roman Urdu (about half of the known words)."""
    if re.search(r"[\u0600-\u06ff]", text):
        return re.sub(r"[\u0600-\u06ff]+", lambda m: (_URDU_ROMAN_SCRIPT[m.group(0)] if m.group(0) in
                                                      _URDU_ROMAN_SCRIPT and rng.random() < 0.5 else m.group(0)),
                      text)
    return _ROMAN_WORD.sub(lambda m: (_ROMAN_URDU_SCRIPT[m.group(0).lower()] if m.group(0).lower() in
                                      _ROMAN_URDU_SCRIPT and rng.random() < 0.5 else m.group(0)), text)


@dataclass(frozen=True)
class Perturbation:
    name: str
    fn: Callable[[str, random.Random], str]
    langs: tuple[str, ...]
    description: str

    def __call__(self, text: str) -> str:
        return self.fn(text, _rng(self.name, text))


_ALL = ("en", "ur", "roman_ur")
_LATIN = ("en", "roman_ur")
PERTURBATIONS: tuple[Perturbation, ...] = (
    Perturbation("leetspeak", leetspeak, _LATIN, "letters swapped for digits and symbols (k4f1r, tr@itor)"),
    Perturbation("spaced_letters", spaced_letters, _ALL, "spaces between the letters of a word (k a f i r)"),
    Perturbation("punctuation_between", punctuation_between, _ALL, "dots, dashes or stars between letters"),
    Perturbation("zero_width", zero_width, _ALL, "zero-width characters inside words"),
    Perturbation("bidi_controls", bidi_controls, _ALL, "bidirectional control characters inside words"),
    Perturbation("homoglyphs", homoglyphs, _LATIN, "Cyrillic/Greek look-alike letters in Latin words"),
    Perturbation("elongation", elongation, _ALL, "a letter repeated (kaaaafir)"),
    Perturbation("emoji_insertion", emoji_insertion, _ALL, "emojis inserted between words"),
    Perturbation("urdu_diacritics", urdu_diacritics, ("ur",), "harakat added to Urdu words"),
    Perturbation("urdu_letter_forms", urdu_letter_forms, ("ur",), "Arabic letter forms (ي ك ه) for Urdu ones"),
    Perturbation("roman_spelling", roman_spelling, ("roman_ur",), "Roman Urdu spelling variants (kafir/kaafir)"),
    Perturbation("script_switch", script_switch, ("ur", "roman_ur"), "words switched between Urdu and Roman script"),
)
BY_NAME = {p.name: p for p in PERTURBATIONS}


def select(names: Sequence[str] | None) -> list[Perturbation]:
    if not names:
        return list(PERTURBATIONS)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown perturbation(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    return [BY_NAME[n] for n in names]


def _flag_rate(flags: np.ndarray) -> float | None:
    return float(flags.mean()) if len(flags) else None


def robustness_report(predictor, examples: Sequence, perturbations: Sequence[Perturbation] | None = None,
                      thresholds: dict | None = None, batch: int = 512) -> dict:
    """Per perturbation: flag rates of expected-extremist and expected-neutral cases before and after.

    Only cases whose text the perturbation changes count (a Latin-only perturbation does not touch Urdu script).
    ``thresholds`` default to the predictor's own; the flag is p(extremist) >= the extremist threshold.
    """
    from serving.predictor import decide

    perturbations = list(perturbations or PERTURBATIONS)
    thresholds = thresholds if thresholds is not None else predictor.meta.thresholds
    e_id, n_id = L.LABEL2ID[L.EXTREMIST], L.LABEL2ID[L.NEUTRAL]
    rows = [ex for ex in examples if ex.label_id in (e_id, n_id)]

    def flags(texts: list[str]) -> np.ndarray:
        probs = np.zeros((len(texts), len(L.LABELS)))
        for s in range(0, len(texts), batch):
            probs[s:s + batch] = predictor.predict_proba(texts[s:s + batch])
        return decide(probs, thresholds) == e_id if texts else np.zeros(0, dtype=bool)

    before = flags([ex.text for ex in rows])
    out = {}
    for p in perturbations:
        idx, texts = [], []
        for i, ex in enumerate(rows):
            if ex.lang not in p.langs:
                continue
            new = p(ex.text)
            if new != ex.text:
                idx.append(i)
                texts.append(new)
        after = flags(texts)
        idx_arr = np.asarray(idx, dtype=int)
        y = np.asarray([rows[i].label_id for i in idx], dtype=int)
        b = before[idx_arr] if len(idx) else np.zeros(0, dtype=bool)
        res = {"description": p.description, "languages": list(p.langs), "n": len(idx)}
        for name, lab in (("extremist", e_id), ("neutral", n_id)):
            mask = y == lab
            rb, ra = _flag_rate(b[mask]), _flag_rate(after[mask])
            # extremist cases flagged before that stay flagged; neutral cases unflagged before that stay unflagged
            keep = b[mask] if lab == e_id else ~b[mask]
            kept = keep & (after[mask] == b[mask])
            res[name] = {"n": int(mask.sum()), "flagged_before": rb, "flagged_after": ra,
                         "delta_points": None if rb is None else 100 * (ra - rb),
                         "kept": int(kept.sum()), "kept_of": int(keep.sum())}
        ed, nd = res["extremist"]["delta_points"], res["neutral"]["delta_points"]
        res["meets_goal"] = (ed is None or ed >= -MAX_EXTREMIST_DROP) and (nd is None or nd <= MAX_NEUTRAL_RISE)
        res["per_lang"] = {}
        for lang in p.langs:
            lm = np.asarray([rows[i].lang == lang for i in idx], dtype=bool)
            if not lm.any():
                continue
            cell = {}
            for name, lab in (("extremist", e_id), ("neutral", n_id)):
                mask = lm & (y == lab)
                rb, ra = _flag_rate(b[mask]), _flag_rate(after[mask])
                cell[name] = {"n": int(mask.sum()), "flagged_before": rb, "flagged_after": ra,
                              "delta_points": None if rb is None else 100 * (ra - rb)}
            res["per_lang"][lang] = cell
        out[p.name] = res
    return out


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _pts(v) -> str:
    return "–" if v is None else f"{v:+.1f}"


def render_table(report: dict) -> list[str]:
    lines = ["| perturbation | n | extremist flagged before → after (Δ pts) | still flagged | neutral flagged before → "
             "after (Δ pts) | still unflagged | goal |", "|---|---:|---|---:|---|---:|---|"]
    for name, r in report.items():
        e, n = r["extremist"], r["neutral"]
        lines.append(f"| {name} | {r['n']} | {_pct(e['flagged_before'])} → {_pct(e['flagged_after'])} "
                     f"({_pts(e['delta_points'])}) | {e['kept']}/{e['kept_of']} | {_pct(n['flagged_before'])} → "
                     f"{_pct(n['flagged_after'])} ({_pts(n['delta_points'])}) | {n['kept']}/{n['kept_of']} | "
                     f"{'met' if r['meets_goal'] else '**missed**'} |")
    lines += ["", f"Goal: extremist flag rate drops at most {MAX_EXTREMIST_DROP:.0f} points, neutral flag rate rises "
                  f"at most {MAX_NEUTRAL_RISE:.0f} points."]
    return lines
