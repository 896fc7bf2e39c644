"""THE label schema. Nothing else in the code base hard-codes label strings.

A model folder stores the labels and ``SCHEMA_VERSION`` it was trained with; loading refuses a folder whose
schema differs (we never rename labels at load time).
"""

from __future__ import annotations

SCHEMA_VERSION = 1

EXTREMIST = "extremist"
COUNTER_NARRATIVE = "counter_narrative"
NEUTRAL = "neutral"

#: Label order is the model's output order (id 0, 1, 2).
LABELS: tuple[str, ...] = (EXTREMIST, COUNTER_NARRATIVE, NEUTRAL)

DESCRIPTIONS: dict[str, str] = {
    EXTREMIST: "Promotes, glorifies, justifies or recruits for violent extremism, incites violence against a group, "
    "or dehumanises or derogates a group for who they are (whoever the target).",
    COUNTER_NARRATIVE: "Argues against, rebuts, mocks or offers an alternative to extremist narratives or violence "
    "(including counter-speech that quotes extremist slogans to reject them).",
    NEUTRAL: "No stance for or against extremism: news, analysis, ordinary religious or identity content, everyday "
    "chatter, non-violent uses of violent words, grievance without endorsing violence.",
}

#: The label whose score decides ``flagged``.
FLAG_LABEL = EXTREMIST
#: The label a text falls back to when no other label's threshold is passed.
FALLBACK_LABEL = NEUTRAL

LABEL2ID: dict[str, int] = {name: i for i, name in enumerate(LABELS)}
ID2LABEL: dict[int, str] = dict(enumerate(LABELS))

#: Languages the corpus format allows; ``other`` is what language id returns for anything else.
LANGUAGES: tuple[str, ...] = ("en", "ur", "roman_ur", "other")


def check_label(value: object) -> str:
    """Return ``value`` if it is a schema label, else raise ``ValueError`` naming the allowed labels."""
    if isinstance(value, str) and value in LABEL2ID:
        return value
    raise ValueError(f"unknown label {value!r}; allowed labels are {', '.join(LABELS)}")


def schema() -> dict:
    """The schema as stored in ``model_meta.json`` and served by ``/v1/info``."""
    return {"version": SCHEMA_VERSION, "labels": list(LABELS), "descriptions": DESCRIPTIONS,
            "flag_label": FLAG_LABEL, "fallback_label": FALLBACK_LABEL}


# --- rhetoric sub-types (issue 15; GUIDELINES.md §12) -------------------------------------------------------------
#: A stable taxonomy per label. A model trained with a sub-type head outputs, after the three label logits, one logit
#: per name in ``subtype_names()`` order; the sub-type served is the best one *of the decided label*.
SUBTYPES: dict[str, tuple[str, ...]] = {
    EXTREMIST: ("recruitment", "glorification", "incitement", "dehumanisation", "justification", "derogation"),
    COUNTER_NARRATIVE: ("rebuttal", "religious_counter_argument", "survivor_voice", "debunking",
                        "alternative_narrative", "community_cohesion", "exit_story"),
    NEUTRAL: ("news_report", "policy_analysis", "political_grievance", "religious_content", "identity_mention",
              "everyday", "nonviolent_violence_words", "personal_abuse"),
}

#: Corpus ``kind`` values whose sub-type has another name; every other kind that is a sub-type name maps to itself.
KIND_TO_SUBTYPE: dict[str, str] = {"quotes_extremist": "rebuttal", "religious_rebuttal": "religious_counter_argument",
                                   "not_language": "everyday"}


def subtype_names(taxonomy: dict[str, list[str] | tuple[str, ...]] | None = None) -> list[str]:
    """The sub-type output order: each label's sub-types, labels in schema order."""
    taxonomy = taxonomy or SUBTYPES
    return [name for label in LABELS for name in taxonomy.get(label, ())]


def subtype_of(label: str, kind: str | None) -> str | None:
    """The sub-type a corpus row teaches, or None where its kind is not a sub-type of its label (not trained)."""
    if not kind:
        return None
    name = KIND_TO_SUBTYPE.get(kind, kind)
    return name if name in SUBTYPES.get(label, ()) else None
