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
