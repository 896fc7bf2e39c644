"""Each perturbation does what it says, is deterministic, and leaves other scripts alone; the report's arithmetic."""

import re
from types import SimpleNamespace

import numpy as np
import pytest

from serving import labels as L
from serving.text import normalize
from training import robustness as R
from training.data import Example

EN = "Honestly these people are a disease spreading through the whole country"
RU = "Sach bolun to ye log is mulk ke liye bimari hain, kafir hain sab, nahi chhorna"
UR = "سچ پوچھو تو یہ لوگ اس ملک کے لیے ایک بیماری ہیں، کافر ہیں سب"
TEXTS = {"en": EN, "roman_ur": RU, "ur": UR}


@pytest.mark.parametrize("p", R.PERTURBATIONS, ids=lambda p: p.name)
def test_deterministic_and_changes_its_languages(p):
    for lang in p.langs:
        out = p(TEXTS[lang])
        assert out != TEXTS[lang], (p.name, lang)
        assert p(TEXTS[lang]) == out


@pytest.mark.parametrize("name, lang", [("leetspeak", "ur"), ("homoglyphs", "ur"), ("urdu_diacritics", "en"),
                                        ("urdu_letter_forms", "roman_ur"), ("roman_spelling", "en")])
def test_leaves_other_scripts_alone(name, lang):
    assert R.BY_NAME[name](TEXTS[lang]) == TEXTS[lang]


def test_leetspeak_uses_digits_or_symbols():
    out = R.BY_NAME["leetspeak"](EN)
    assert re.search(r"[A-Za-z][@3105$7]|[@3105$7][A-Za-z]", out)


@pytest.mark.parametrize("name, pattern", [("spaced_letters", r"(?:\w ){3,}\w"),
                                           ("punctuation_between", r"(?:\w[.\-_*]){3,}\w")])
def test_letters_are_separated(name, pattern):
    for text in (EN, UR):
        assert re.search(pattern, R.BY_NAME[name](text))


@pytest.mark.parametrize("name", ["zero_width", "bidi_controls", "homoglyphs", "urdu_diacritics", "urdu_letter_forms"])
def test_invisible_and_lookalike_changes_normalise_away(name):
    p = R.BY_NAME[name]
    for lang in p.langs:
        out = p(TEXTS[lang])
        assert normalize(out) == normalize(TEXTS[lang]), (name, lang)


def test_invisible_characters_are_inserted():
    assert any(c in R.BY_NAME["zero_width"](EN) for c in R._ZERO_WIDTH)
    assert any(c in R.BY_NAME["bidi_controls"](UR) for c in R._BIDI)
    assert re.search(r"[\u0400-\u04ff\u0370-\u03ff]", R.BY_NAME["homoglyphs"](EN))


def test_elongation_and_emoji():
    assert re.search(r"([^\W\d_])\1{2,}", R.BY_NAME["elongation"](RU))
    out = R.BY_NAME["emoji_insertion"](EN)
    assert any(e in out for e in R._EMOJI) and len(out.split()) > len(EN.split())


def test_urdu_diacritics_and_letter_forms():
    assert any(d in R.BY_NAME["urdu_diacritics"](UR) for d in R._DIACRITICS)
    assert "ي" in R.BY_NAME["urdu_letter_forms"](UR)


def test_roman_spelling_variants():
    out = R.BY_NAME["roman_spelling"]("kafir kafir kafir kafir kafir kafir")
    words = out.split()
    assert set(words) - {"kafir"} and set(words) <= {"kafir", *R._ROMAN_VARIANTS["kafir"]}


def test_script_switch_both_ways():
    assert re.search(r"[\u0600-\u06ff]", R.BY_NAME["script_switch"](RU))
    assert re.search(r"[A-Za-z]", R.BY_NAME["script_switch"](UR))


def test_select_refuses_unknown_names():
    assert [p.name for p in R.select(["elongation"])] == ["elongation"]
    with pytest.raises(ValueError, match="unknown perturbation"):
        R.select(["nope"])


class _KeywordPredictor:
    """Flags a text exactly when it contains the literal word 'vermin' (no normalisation)."""

    meta = SimpleNamespace(thresholds={L.EXTREMIST: 0.5, L.COUNTER_NARRATIVE: 0.5})

    def predict_proba(self, texts):
        e, c, n = (L.LABEL2ID[x] for x in (L.EXTREMIST, L.COUNTER_NARRATIVE, L.NEUTRAL))
        out = np.zeros((len(texts), 3))
        for i, t in enumerate(texts):
            out[i, e if "vermin" in t else n] = 1.0
        return out


def test_report_counts_flags_before_and_after():
    rows = [Example(id=f"e{i}", text="vermin", label=L.EXTREMIST, lang="en") for i in range(3)]
    rows += [Example(id=f"n{i}", text="weather", label=L.NEUTRAL, lang="en") for i in range(2)]
    rows += [Example(id="c", text="counter", label=L.COUNTER_NARRATIVE, lang="en")]  # not counted
    rep = R.robustness_report(_KeywordPredictor(), rows, R.select(["spaced_letters", "urdu_diacritics"]))
    spaced = rep["spaced_letters"]
    assert spaced["n"] == 5
    assert spaced["extremist"]["flagged_before"] == 1.0 and spaced["extremist"]["flagged_after"] == 0.0
    assert spaced["extremist"]["delta_points"] == pytest.approx(-100.0)
    assert spaced["neutral"]["flagged_before"] == 0.0 and spaced["neutral"]["delta_points"] == 0.0
    assert spaced["extremist"]["kept"] == 0 and spaced["extremist"]["kept_of"] == 3
    assert spaced["neutral"]["kept"] == 2 and spaced["neutral"]["kept_of"] == 2
    assert spaced["meets_goal"] is False
    assert rep["urdu_diacritics"]["n"] == 0 and rep["urdu_diacritics"]["meets_goal"] is True
    assert "missed" in "\n".join(R.render_table(rep))
