import json

import pytest

from star.data.games import game_id, list_games
from star.data.soccernet import LabelsError, format_game_time, load_labels, parse_game_time

ANNOTATION = {"gameTime": "2 - 05:20", "label": "corner", "position": "320000", "visibility": "visible",
              "important": True, "description": "d", "identified": "Ann Smith (Town) wins a corner.",
              "anonymized": "[PLAYER] ([TEAM]) wins a corner."}


def test_game_time_is_video_time_in_integer_seconds():
    assert parse_game_time("1 - 05:20") == (1, 320)
    assert parse_game_time("2 - 47:03") == (2, 2823)
    assert format_game_time(2, 2823.9) == "2 - 47:03"
    with pytest.raises(ValueError):
        parse_game_time("3 - 01:00")


def write(tmp_path, annotations):
    path = tmp_path / "Labels-caption.json"
    path.write_text(json.dumps({"UrlLocal": "x/", "annotations": annotations}))
    return path


def test_labels_load(tmp_path):
    labels = load_labels(write(tmp_path, [ANNOTATION]))
    (ann,) = labels.half(2)
    assert (ann.seconds, ann.position_ms, ann.label) == (320, 320000, "corner")
    assert labels.meta["UrlLocal"] == "x/"


@pytest.mark.parametrize("change, message", [
    ({"gameTime": "1 - 5"}, "annotation 0: gameTime '1 - 5'"),
    ({"label": "goal"}, "label 'goal' is not a caption label"),
    ({"position": "soon"}, "position 'soon'"),
])
def test_malformed_labels_name_file_annotation_and_field(tmp_path, change, message):
    path = write(tmp_path, [{**ANNOTATION, **change}])
    with pytest.raises(LabelsError, match="Labels-caption.json") as err:
        load_labels(path)
    assert message in str(err.value)


def test_missing_field_and_bad_json(tmp_path):
    ann = dict(ANNOTATION)
    del ann["anonymized"]
    with pytest.raises(LabelsError, match=r"annotation 0 lacks \['anonymized'\]"):
        load_labels(write(tmp_path, [ann]))
    (tmp_path / "Labels-caption.json").write_text("{not json")
    with pytest.raises(LabelsError, match="not valid JSON"):
        load_labels(tmp_path / "Labels-caption.json")


def test_game_ids_are_safe_and_games_come_from_split_files(tmp_path):
    path = "england_epl/2014-2015/2015-05-17 - 18-00 Manchester United 1 - 1 Arsenal"
    assert game_id(path) == "england_epl_2014-2015_2015-05-17-18-00_manchester_united_1-1_arsenal"
    (tmp_path / "test.txt").write_text(path + "\n\n# comment\n")
    cfg = {"seed": 0, "dataset": {"source": "soccernet", "splits": {"test": str(tmp_path / "test.txt")}}}
    from star.config import validate

    (game,) = list_games(validate(cfg))
    assert (game.path, game.split) == (path, "test")
