"""Bias metrics (Borkan et al. 2019) on tiny inputs checked by hand, and the group lexicon."""

import numpy as np
import pytest

from training import bias


def test_roc_auc_by_hand():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 0.35 beats 0.1 only, 0.8 beats both -> 3/4
    assert bias.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert bias.roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts half
    assert bias.roc_auc([1, 0], [0.9, 0.1]) == pytest.approx(1.0)
    assert bias.roc_auc([0, 1], [0.9, 0.1]) == pytest.approx(0.0)
    assert bias.roc_auc([1, 1], [0.2, 0.3]) is None
    assert bias.roc_auc([], []) is None


def test_roc_auc_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300), 1)  # many ties
    assert bias.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))


# In the group: positives 0.9, 0.5 and negatives 0.8, 0.1. Background: positives 0.7, 0.3, negatives 0.6, 0.2.
Y = [1, 1, 0, 0, 1, 1, 0, 0]
S = [0.9, 0.5, 0.8, 0.1, 0.7, 0.3, 0.6, 0.2]
G = [True] * 4 + [False] * 4


def test_subgroup_bpsn_bnsp_by_hand():
    # subgroup: 0.9>0.8, 0.9>0.1, 0.5<0.8, 0.5>0.1 -> 3/4
    assert bias.subgroup_auc(Y, S, G) == pytest.approx(0.75)
    # BPSN: background positives {0.7, 0.3} vs subgroup negatives {0.8, 0.1}: 0.7>0.1, 0.3>0.1 -> 2/4
    assert bias.bpsn_auc(Y, S, G) == pytest.approx(0.5)
    # BNSP: subgroup positives {0.9, 0.5} vs background negatives {0.6, 0.2}: 0.9>both, 0.5>0.2 -> 3/4
    assert bias.bnsp_auc(Y, S, G) == pytest.approx(0.75)


def test_bias_table_and_missing_goal():
    members = [{"shia"}] * 4 + [set()] * 4
    table = bias.bias_table(Y, S, members, groups=("shia", "sikh"), min_support=1)
    assert table["shia"]["n"] == 4 and table["shia"]["positives"] == 2 and table["shia"]["negatives"] == 2
    assert table["shia"]["bpsn_auc"] == pytest.approx(0.5)
    assert table["shia"]["meets_goal"] is False
    assert table["sikh"]["n"] == 0 and table["sikh"]["meets_goal"] is None
    assert bias.missing_goal(table) == ["shia"]
    perfect = bias.bias_table([1, 0, 1, 0], [0.9, 0.1, 0.8, 0.2], [{"sikh"}, {"sikh"}, set(), set()], ("sikh",),
                              min_support=1)
    assert perfect["sikh"]["meets_goal"] is True


def test_groups_with_too_few_rows_are_not_judged():
    members = [{"shia"}] * 4 + [set()] * 4
    table = bias.bias_table(Y, S, members, groups=("shia",), min_support=3)  # 2 positives, 2 negatives in group
    assert table["shia"]["bpsn_auc"] == pytest.approx(0.5) and table["shia"]["meets_goal"] is None
    only_negatives = bias.bias_table([0, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], [{"shia"}, {"shia"}, set(), set()],
                                     ("shia",), min_support=2)
    assert only_negatives["shia"]["bnsp_auc"] is None
    assert only_negatives["shia"]["bpsn_auc"] == 0.0 and only_negatives["shia"]["meets_goal"] is False


@pytest.mark.parametrize("text, group", [
    ("Shias are welcome at our iftar", "shia"), ("Ahmadis", "ahmadi"), ("Q@diani", "ahmadi"),
    ("Pakhtun elders met today", "pashtun"), ("pathanon ko", "pashtun"), ("Baloch students", "baloch"),
    ("Afghan refugees in Peshawar", "afghan_refugee"), ("khawaja sira community", "transgender"),
    ("aurton ka haq", "women"), ("police ne", "state"), ("ہندوؤں کی دیوالی", "hindu"), ("شیعہ برادری", "shia"),
    ("بلوچوں کے حقوق", "baloch"), ("خواجہ سرا", "transgender"), ("پولیس والے", "state"), ("مسیحی", "christian"),
])
def test_detect_groups_finds(text, group):
    assert group in bias.detect_groups(text)


@pytest.mark.parametrize("text", ["Rafiq came home", "بلوچستان میں بارش", "ہندوستان کی ٹیم", "Afghanistan won",
                                  "سنی سنائی بات", "Balochistan budget"])
def test_detect_groups_ignores_places_and_homographs(text):
    assert bias.detect_groups(text) == set()
