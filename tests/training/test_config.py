import pytest

from training.config import ConfigError, load_config


def test_default_config_loads():
    cfg = load_config()
    assert cfg.model.kind == "transformer" and cfg.model.base == "e5-small" and cfg.train.freeze_layers == 2
    assert cfg.train.real_weight == 2.0 and cfg.train.subtype_refit is True
    assert cfg.data.train == ["data/labeled/train.jsonl", "data/labeled/train.real.jsonl",
                              "data/labeled/train.context.jsonl"]
    assert cfg.data.dev == ["data/labeled/dev.jsonl", "data/labeled/dev.real.jsonl", "data/labeled/dev.context.jsonl"]
    assert cfg.data.test == ["data/labeled/test.jsonl", "data/labeled/test.real.jsonl",
                             "data/labeled/test.context.jsonl"]


def test_set_overrides_are_typed():
    cfg = load_config(overrides=["train.epochs=2", "train.learning_rate=1e-4", "model.kind=linear",
                                 'data.label_map={hate = "extremist"}', "train.class_weighting=false"])
    assert cfg.train.epochs == 2 and cfg.train.learning_rate == 1e-4
    assert cfg.model.kind == "linear" and cfg.data.label_map == {"hate": "extremist"}
    assert cfg.train.class_weighting is False


def test_unknown_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match="did you mean train.epochs"):
        load_config(overrides=["train.epoch=2"])


@pytest.mark.parametrize("override, fragment", [
    ("train.epochs=0", "train.epochs"),
    ("model.kind=svm", "model.kind"),
    ("linear.word_ngrams=[3, 1]", "n-gram range"),
    ("train.epochs", "expected key=value"),
])
def test_bad_values_are_refused(override, fragment):
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        load_config(overrides=[override])


def test_bad_toml_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 2")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
