import pytest
import yaml

from star import config


def test_defaults_come_from_the_schema():
    cfg = config.validate({})
    assert cfg["dataset"]["source"] == "synthetic"
    assert cfg["features"]["import"]["baidu"] == {
        "file": "{half}_baidu_soccer_embeddings.npy", "fps": 1, "dim": 8576, "tolerance_s": 10}
    assert cfg["positions"]["max_players"] == 32


def test_repo_config_is_valid_and_complete():
    cfg = config.load("config.yaml")
    assert cfg["world"]["games"]["train"] >= 1 and cfg["features"]["encoders"]


def test_unknown_key_and_bad_value_are_named(tmp_path):
    bad = tmp_path / "exp.yaml"
    bad.write_text(yaml.safe_dump({"world": {"games": {"train": 0}, "colour": "red"}}))
    with pytest.raises(config.ConfigError) as err:
        config.load("config.yaml", bad)
    text = str(err.value)
    assert "exp.yaml" in text
    assert "world.games.train: 0 is less than the minimum of 1" in text
    assert "'colour' was unexpected" in text


def test_later_files_override_earlier_ones(tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text("world: {half_duration_s: 120}\n")
    cfg = config.load("config.yaml", exp)
    assert cfg["world"]["half_duration_s"] == 120
    assert cfg["world"]["games"] == config.load("config.yaml")["world"]["games"]


def test_section_from_inline_json_fills_defaults():
    decode = config.section("decode", '{"fps": 2}')
    assert decode == {"fps": 2, "height": None}
    with pytest.raises(config.ConfigError, match="decode.fps"):
        config.section("decode", '{"fps": 0}')
