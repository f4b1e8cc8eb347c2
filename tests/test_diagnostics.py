"""star diagnostics: side, zone and long-range agreement against the world's ground truth, diversity, confusion."""

import contextlib
import io
import json

import pandas as pd
import pytest

from star.cli import main
from star.eval.diagnostics import DiagnosticsError, diagnose, fact, match_spots, side, zone
from star.data.predictions import Caption, write_predictions
from star.data.soccernet import format_game_time

GOAL = {"what": "score", "since_s": 120.0}
# (seconds, label, caption, recalls) of each game's first half; the second half is empty
TRUTH = [
    (30, "corner", "[TEAM] have a corner on the left after [PLAYER] tested the keeper.", {"what": "cause",
                                                                                          "since_s": 40.0}),
    (90, "soccer-ball", "[PLAYER] scores inside the box. [TEAM] take the lead, 1-0.", GOAL),
    (150, "y-card", "[PLAYER] is booked after a foul on the right in midfield.", None),
    (200, "soccer-ball", "[PLAYER] scores from distance. [TEAM] draw level at 1-1.", {"what": "score", "since_s": 9.0}),
]


def write_game(root, game, rows):
    annotations = [{"gameTime": format_game_time(1, s), "label": lab, "position": str(s * 1000),
                    "anonymized": text, "recalls": recalls} for s, lab, text, recalls in rows]
    (root / game).mkdir(parents=True)
    (root / game / "Labels-caption.json").write_text(json.dumps({"annotations": annotations}))


def write_run(root, game, captions, labels=None, seconds=None):
    seconds = seconds or [s for s, *_ in TRUTH]
    labels = labels or [lab for _, lab, *_ in TRUTH]
    write_predictions(root / game / "results_dense_captioning.json", game,
                      [{"half": 1, "seconds": s, "comment": c, "label": lab}
                       for s, c, lab in zip(seconds, captions, labels, strict=True)])


@pytest.fixture
def tree(tmp_path):
    games = ["g1", "g2"]
    for g in games:
        write_game(tmp_path / "labels", g, TRUTH)
    good = ["[TEAM] win a corner on the left after a shot was tipped.",     # side and cause (a save) agree
            "[PLAYER] scores outside the box. [TEAM] take the lead, 1-0.",  # zone wrong, score right
            "[PLAYER] is booked for a foul on the left in midfield.",       # side wrong, zone right
            "[PLAYER] scores. [TEAM] draw level at 1-1."]                  # recent: not long-range
    for g in games:
        write_run(tmp_path / "gt", g, good)
        write_run(tmp_path / "spots", g, [good[0], good[0], good[2]], labels=["corner", "y-card", "y-card"],
                  seconds=[28, 95, 300])
    return tmp_path, games


def test_words_and_facts():
    assert side("a cross from deep on the right") == "right" and side("on the left and on the right") is None
    assert zone("fouled in midfield on the left") == "in midfield" and zone("no zone") is None
    assert fact("score", "It is level at 2-2.") == "2-2" and fact("score", "It is goalless.") == "goalless"
    assert fact("cause", "after [PLAYER] tested [PLAYER]") == fact("cause", "tipped it around the post") == "0"
    assert fact("cause", "[PLAYER] fouled [PLAYER]") == "1" and fact("booking", "booked earlier in this half")


def test_spots_match_nearest_first_within_tolerance():
    truths = [type("T", (), {"seconds": s, "label": lab})() for s, lab in ((10, "corner"), (40, "y-card"))]
    spots = [Caption(12, "", "corner"), Caption(38, "", "corner"), Caption(90, "", "whistle")]
    assert match_spots(truths, spots, 15) == [("corner", "corner"), ("y-card", "corner"), ("none", "whistle")]
    assert match_spots(truths, spots, 1) == [("corner", "missed"), ("y-card", "missed"), ("none", "corner"),
                                             ("none", "corner"), ("none", "whistle")]


def test_rates_diversity_and_confusion(tree):
    root, games = tree
    table, confusion = diagnose(root / "labels", games, [("M", root / "gt", root / "spots")], resamples=200)
    row = table.set_index("Run").loc["M"]
    # side: annotations 0 (left) and 2 (right) per game; the run gets 0 right, 2 wrong -> 50; commonest 50
    assert (row["side"], row["side_n"], row["side_commonest"]) == (50.0, 4, 50.0)
    # zone: annotation 1 (inside the box, run says outside) and 2 (in midfield, agrees)
    assert (row["zone"], row["zone_n"]) == (50.0, 4)
    # long-range: the corner's cause (40 s) and the first goal's score (120 s); the 1-1 (9 s) is local
    assert (row["long_range"], row["long_range_n"], row["long_range_commonest"]) == (100.0, 4, 100.0)
    assert row["side_lo"] <= row["side"] <= row["side_hi"]
    assert row["captions_per_half"] == 1.0  # 2 distinct captions in each first half, none in the second
    # spots: 28 -> corner (corner), 95 -> goal at 90 (y-card), 300 unmatched; the goal at 200 and the card missed
    assert (row["spot_label"], row["spot_label_n"]) == (50.0, 4)
    counts = {(r.annotation, r.spot): r["count"] for _, r in confusion.iterrows()}
    assert counts == {("corner", "corner"): 2, ("soccer-ball", "y-card"): 2, ("soccer-ball", "missed"): 2,
                      ("y-card", "missed"): 2, ("none", "y-card"): 2}
    assert table.iloc[-1]["Run"] == "annotations" and pd.isna(table.iloc[-1]["side"])
    again, _ = diagnose(root / "labels", games, [("M", root / "gt", root / "spots")], resamples=200)
    pd.testing.assert_frame_equal(table, again)  # seeded


def test_command_writes_csv_markdown_and_confusion(tree):
    root, games = tree
    (root / "games.txt").write_text("\n".join(games) + "\n")
    out = root / "results" / "diagnostics.csv"
    out.parent.mkdir()
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["diagnostics", str(root / "labels"), "--games", str(root / "games.txt"), "--out", str(out),
                     "--run", "STaR", str(root / "gt"), str(root / "spots"), "--bootstrap", "100"]) == 0
    assert pd.read_csv(out)["Run"].tolist() == ["STaR", "annotations"]
    md = out.with_suffix(".md").read_text()
    assert "| STaR" in md and " ± " in md and "annotation label (rows)" in md
    assert pd.read_csv(root / "results" / "diagnostics_confusion.csv")["count"].sum() == 10


def test_runs_not_at_the_annotations_are_refused(tree):
    root, games = tree
    with pytest.raises(DiagnosticsError, match="g1/results_dense_captioning.json: half 1 has 3 predictions for 4"):
        diagnose(root / "labels", games, [("M", root / "spots", root / "spots")])
