"""Registry: promote with guarded slices, rollback, history (tiny linear models)."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from serving.artifact import update_meta
from tests.helpers import MINI_CORPUS
from training.cli import app
from training.registry import PromotionRefused, Registry, RegistryError, check_guards, guarded_promote


@pytest.fixture()
def worse_dir(linear_model_dir, tmp_path):
    """The same model with thresholds that almost never flag: worse on every slice."""
    out = tmp_path / "worse"
    shutil.copytree(linear_model_dir, out)
    update_meta(out, thresholds={"extremist": 0.999, "counter_narrative": 0.999}, profiles={}, default_profile=None,
                version="0.0.2")
    return out


def _cli(*args):
    return CliRunner().invoke(app, list(map(str, args)))


def test_promote_refuse_force_rollback(linear_model_dir, worse_dir, tmp_path):
    reg = Registry(tmp_path / "registry", tmp_path / "default")
    e1, comparison, _ = guarded_promote(reg, linear_model_dir, [MINI_CORPUS], reason="first", resamples=0)
    assert comparison is None and e1["version"] == "v0001"
    assert (tmp_path / "default").is_symlink() and (tmp_path / "default" / "model_meta.json").exists()
    with pytest.raises(PromotionRefused) as refused:
        guarded_promote(reg, worse_dir, [MINI_CORPUS], resamples=0)
    assert any("all" in v for v in refused.value.violations)
    assert reg.read()["current"] == "v0001" and len(reg.read()["entries"]) == 1
    with pytest.raises(RegistryError, match="--reason"):
        guarded_promote(reg, worse_dir, [MINI_CORPUS], force=True, resamples=0)
    e2, _, violations = guarded_promote(reg, worse_dir, [MINI_CORPUS], force=True, reason="test", resamples=0)
    assert e2["version"] == "v0002" and e2["forced"] and violations
    assert (tmp_path / "default").resolve() == (tmp_path / "registry" / "v0002").resolve()
    back = reg.rollback(reason="bad")
    assert back["version"] == "v0001" and reg.read()["entries"][1]["status"] == "rolled_back"
    assert (tmp_path / "default").resolve() == (tmp_path / "registry" / "v0001").resolve()
    with pytest.raises(RegistryError, match="oldest"):
        reg.rollback()


def test_plain_default_is_adopted_first(linear_model_dir, tmp_path):
    shutil.copytree(linear_model_dir, tmp_path / "default")
    reg = Registry(tmp_path / "registry", tmp_path / "default")
    entry, comparison, _ = guarded_promote(reg, linear_model_dir, [MINI_CORPUS], resamples=0)
    assert comparison is not None and entry["version"] == "v0002"
    assert reg.read()["entries"][0]["reason"].startswith("adopted")
    assert reg.rollback()["version"] == "v0001"


def test_check_guards_patterns():
    row = lambda d: {"diff": d, "champion": {"macro_f1": 0.8}, "challenger": {"macro_f1": 0.8 + d}}  # noqa: E731
    comp = {"suites": {"test": {"all": row(0.0), "lang=ur": row(-0.05), "origin=written": row(-0.5)}}}
    assert len(check_guards(comp)) == 1 and "lang=ur" in check_guards(comp)[0]
    assert check_guards(comp, tolerance=0.1) == []


def test_cli_promote_list_rollback(linear_model_dir, worse_dir, tmp_path):
    reg, served = tmp_path / "r", tmp_path / "d"
    common = ["--registry", reg, "--served", served]
    ok = _cli("promote", "--challenger", linear_model_dir, "--reason", "start", "--eval", MINI_CORPUS,
              "--only-eval", "--resamples", 0, *common)
    assert ok.exit_code == 0, ok.output
    refused = _cli("promote", "--challenger", worse_dir, "--eval", MINI_CORPUS, "--only-eval", "--resamples", 0,
                   *common)
    assert refused.exit_code == 1 and "refused" in refused.output
    forced = _cli("promote", "--challenger", worse_dir, "--eval", MINI_CORPUS, "--only-eval", "--resamples", 0,
                  "--force", "--reason", "trial", *common)
    assert forced.exit_code == 0, forced.output
    listed = _cli("models", "list", "--registry", reg)
    assert "v0002" in listed.output and "(forced) trial" in listed.output
    assert _cli("rollback", *common).exit_code == 0
    assert json.loads((reg / "registry.json").read_text())["current"] == "v0001"
