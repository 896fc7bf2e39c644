"""``evaluate_sets`` scores a row once even when several sets hold it (the per-file sets repeat "test")."""

from __future__ import annotations

from tests.helpers import MINI_CORPUS


class Counting:
    """A predictor that counts the texts it scores (and otherwise is the real linear model)."""

    def __init__(self, inner):
        self.inner, self.meta, self.backend, self.texts = inner, inner.meta, inner.backend, 0

    def scores(self, texts, *, normalized=False, contexts=None):
        self.texts += len(texts)
        return self.inner.scores(texts, normalized=normalized, contexts=contexts)


def test_each_row_is_scored_once_and_metrics_are_unchanged(linear_predictor, tmp_path):
    from training.data import load_many
    from training.evaluate import evaluate_examples, evaluate_sets

    rows = load_many([MINI_CORPUS])
    part = rows[: len(rows) // 3]
    counting = Counting(linear_predictor)
    result = evaluate_sets(counting, {"all": rows, "part": part, "again": rows}, tmp_path, plots=False)
    assert counting.texts == len({ex.text for ex in rows})
    alone, _ = evaluate_examples(linear_predictor, part)
    for key in ("n", "macro_f1", "accuracy", "flagged", "confusion", "per_label"):
        assert result["datasets"]["part"][key] == alone[key]
