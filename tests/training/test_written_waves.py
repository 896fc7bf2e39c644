"""Written waves kept in data/written/ (DATASHEET §14, §15): waves 9 and 10 are training files of their own, outside
dev and test and outside the default recipe, agreed by a second annotator where double-labelled, and copy no held-out
row; ``data/written/near_heldout.py`` finds a copied frame."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.helpers import read_jsonl as read

ROOT = Path(__file__).resolve().parents[2]
WRITTEN = ROOT / "data" / "written"
LABELED = ROOT / "data" / "labeled"
_spec = importlib.util.spec_from_file_location("near_heldout", WRITTEN / "near_heldout.py")
near_heldout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(near_heldout)


@pytest.fixture(scope="module", params=["wave9", "wave10"])
def wave(request) -> tuple[str, list[dict]]:
    rows = [r for p in sorted(WRITTEN.glob(f"{request.param}_*.jsonl")) for r in read(p)]
    if not rows:
        pytest.fail(f"no data/written/{request.param}_*.jsonl under {WRITTEN}")
    return request.param, rows


def test_each_wave_is_its_own_training_file_outside_the_default_recipe(wave):
    from training.config import load_config

    name, rows = wave
    assert read(LABELED / f"train.{name}.jsonl") == rows, "run python data/written/split.py"
    elsewhere = {r["id"] for split in ("train", "dev", "test") for r in read(LABELED / f"{split}.jsonl")}
    assert not {r["id"] for r in rows} & elsewhere
    assert len({r["id"] for r in rows}) == len(rows)
    # measured and kept out (DATASHEET §14: two seeds; §15: one training by a rule written first)
    assert not any(f"train.{name}.jsonl" in f for f in load_config().data.train)


def test_each_wave_second_pass_agrees_or_was_settled(wave):
    name, rows = wave
    by_id = {r["id"]: r for r in rows}
    agreement = json.loads((WRITTEN / "labels" / f"{name}.agreement.json").read_text(encoding="utf-8"))
    settled = agreement.get("adjudicated", {})
    second = [r for p in sorted((WRITTEN / "labels").glob(f"{name}_second.*.jsonl")) for r in read(p)]
    assert len(second) >= 0.2 * len(rows)
    assert {r["id"] for r in second} <= set(by_id)
    for r in second:
        if r["label"] != by_id[r["id"]]["label"]:
            assert r["id"] in settled, f"{r['id']}: the second annotator disagrees and nothing settled it"
            assert by_id[r["id"]]["label"] == settled[r["id"]]["settled"].split("/")[0]


def test_near_heldout_finds_a_copied_frame_with_the_group_swapped():
    case = "Shia dehshatgard nahi hain. Chand hathyarband logon ki wajah se poori qaum ko ilzam dena band karo."
    held = [("suite", case, near_heldout.grams(case))]
    copy = near_heldout.grams(case.replace("Shia", "Hindu").replace("band karo", "band kro"))
    fresh = near_heldout.grams("Mere Hindu dost ne Eid pe sab se pehle mubarak di, aur hum ne milkar sheer khurma "
                               "banaya.")
    assert near_heldout.nearest(copy, held)[0] >= 0.8
    assert near_heldout.nearest(fresh, held)[0] < 0.2


def test_no_wave_row_copies_a_held_out_row(wave, capsys):
    """The rule the waves were filtered by (~15 s each): containment under 0.5 against the functional suite and
    dev/test."""
    name, _ = wave
    near_heldout.main([str(p) for p in sorted(WRITTEN.glob(f"{name}_*.jsonl"))])
    assert capsys.readouterr().out.strip().endswith("0 row(s) at or over 0.5")
