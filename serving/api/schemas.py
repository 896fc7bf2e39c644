"""Request and response bodies of the HTTP API (the contract in DESIGN.md; extend compatibly)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictStr


class ClassifyRequest(BaseModel):
    """Texts to classify. Limits (texts per request, characters per text) are served by ``GET /v1/info``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"texts": ["Join the caravan, brothers, the fight needs you.",
                                "Violence never brought anyone back; talk to someone before it is too late."]}]})

    # Text content (empty, NUL, lone surrogates, length) is checked in the route so each problem gets its own
    # code; the schema documents what is accepted.
    texts: list[StrictStr] = Field(
        ..., min_length=1, description="Posts to classify, in order; each a non-empty string without NUL characters.",
        json_schema_extra={"items": {"type": "string", "minLength": 1, "pattern": r"^[^\x00]*\S[^\x00]*$"}})
    profile: StrictStr | None = Field(
        None, description="Threshold profile to decide labels with (see `profiles` in /v1/info); default: the "
                          "service's default profile.")
    contexts: list[StrictStr | None] | None = Field(
        None, description="Optional parent posts, aligned with `texts`: the post each text replies to, or null where "
                          "a text has none. Only for models that read context (`model.context` in /v1/info); a text "
                          "without a parent is judged exactly as when `contexts` is absent.")
    explain: bool = Field(False, description="Return `evidence` per text: the words that drove the extremist and "
                                             "counter-narrative scores (word occlusion; costs about one model call "
                                             "per word).")


class ModelRef(BaseModel):
    name: str
    version: str
    sha256: str = Field(description="Digest over the checksums of every file that affects predictions.")


class EvidenceSpan(BaseModel):
    start: int = Field(description="Offset of the word's first character in the text as sent (Unicode code points, "
                                   "i.e. Python str indices; in JavaScript index Array.from(text)).")
    end: int = Field(description="Offset just past the word's last character.")
    text: str = Field(description="text[start:end].")
    label: str = Field(description="The label this word pushes up: extremist or counter_narrative.")
    weight: float = Field(description="How much the label's log-odds drop when the word is deleted.")


class Subtype(BaseModel):
    name: str = Field(description="The rhetoric sub-type of the decided label (taxonomy: `model.subtypes` in "
                                  "/v1/info; GUIDELINES.md §12).")
    score: float = Field(description="Its probability among the decided label's sub-types.")


class Result(BaseModel):
    label: str = Field(description="One of the labels served by /v1/info.")
    scores: dict[str, float] = Field(description="Calibrated probability per label; they sum to 1.")
    flagged: bool = Field(description="True when the flag label (extremist) passed its threshold.")
    language: str = Field(description="Detected language: en, ur, roman_ur or other.")
    review: bool = Field(False, description="True when p(extremist) lies in the profile's review band: a human "
                                            "should decide.")
    subtype: Subtype | None = Field(None, description="Only from a model with a sub-type head.")
    evidence: list[EvidenceSpan] | None = Field(None, description="Only with `explain`: word spans, strongest first.")


class ClassifyResponse(BaseModel):
    model: ModelRef
    results: list[Result] = Field(description="One result per input text, in input order.")


class ModelInfo(ModelRef):
    kind: str
    backend: str
    base: str | None = None
    max_length: int | None = Field(None, description="Tokens per window; longer texts are split into windows.")
    window_stride: int | None = None
    window_aggregation: str = Field("max", description="How a long text's window scores combine.")
    int8: str | None = Field(None, description="The int8 ONNX graph, or null when the export found none that "
                                               "agrees with fp32 (then fp32 is served; see int8_note).")
    int8_note: str | None = None
    fp32: str | None = Field(None, description="The fp32 ONNX graph, or null when the folder ships int8 only "
                                               "(see fp32_note).")
    fp32_note: str | None = None
    context: bool = Field(False, description="Whether the model reads an optional parent post per text (`contexts`).")
    subtypes: dict[str, list[str]] | None = Field(None, description="Sub-types per label, when the model has a "
                                                                    "sub-type head.")
    linear_blend: float | None = Field(None, description="The linear baseline's share of the label logits (texts "
                                                         "without a parent), or null when the transformer scores "
                                                         "alone.")
    subtype_blend: float | None = Field(None, description="The linear model's share of the sub-type logits (texts "
                                                          "without a parent), or null when the transformer's "
                                                          "sub-type outputs are served alone.")


class LabelsInfo(BaseModel):
    version: int
    labels: list[str]
    descriptions: dict[str, str]
    flag_label: str
    fallback_label: str


class Limits(BaseModel):
    max_texts_per_request: int
    max_chars_per_text: int
    max_body_bytes: int
    max_batch_size: int
    model_batch_size: int
    max_wait_ms: float
    queue_size: int
    request_timeout_s: float
    max_batch_tokens: int | None = Field(None, description="Tokens (summed over windows) per model batch.")
    queue_tokens: int | None = Field(None, description="Tokens the queue holds; beyond it requests get 429.")
    max_tokens_per_request: int | None = Field(None, description="Tokens one request may cost (413 over it).")
    max_windows_per_text: int | None = Field(None, description="Windows one text may have (413 over it).")


class ProfileInfo(BaseModel):
    thresholds: dict[str, float]
    review_band: list[float] | None = Field(None, description="[low, high): p(extremist) here sets `review`.")
    description: str = ""
    metrics: dict = Field(default_factory=dict, description="Precision/recall of this profile on dev posts.")


class InfoResponse(BaseModel):
    model: ModelInfo
    labels: LabelsInfo
    thresholds: dict[str, float] = Field(description="Thresholds of the default profile.")
    temperature: float
    profiles: dict[str, ProfileInfo] = Field(default_factory=dict)
    default_profile: str
    limits: Limits
    auth: bool = Field(description="Whether /v1/* requires an `Authorization: Bearer` API key.")


class Health(BaseModel):
    status: str


class Ready(Health):
    model: ModelRef


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. invalid_json, text_too_long, overloaded.")
    message: str = Field(description="What went wrong and how to fix it.")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ReloadResponse(BaseModel):
    """``POST /v1/admin/reload``: the model swapped out and the one now serving."""

    old: ModelRef = Field(description="The model served before the reload (it finished the requests it held).")
    new: ModelRef = Field(description="The model serving from now on.")
    folder: str = Field(description="The model folder loaded (the service's model path with symlinks resolved).")
    load_s: float = Field(description="Seconds spent loading and checking the new folder.")
    drain_s: float = Field(description="Seconds the old model took to finish the requests it held.")
