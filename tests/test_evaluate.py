import contextlib
import io
import json
import random
import shutil

import numpy as np
import pytest

from star.cli import main
from star.data.soccernet import format_game_time
from star.eval import dvc, java
from star.data.predictions import PredictionsError, load_predictions, write_predictions
from star.eval.dvc import CAPTION_METRICS, METRICS, Evaluator, bootstrap_ci, f1, overlaps
from star.eval.java import JavaError
from star.eval.scorers import TextScorer, lcs_length

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="java is not installed (PTB tokenizer, METEOR)")

WORDS = ("[PLAYER] ([TEAM]) takes the corner kick , shot goal ball referee yellow card whistle header wide "
         "save keeper cross box foul penalty ! what a chance . Müller's").split()


def sentence(rng: random.Random, n_min: int = 3, n_max: int = 14) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(n_min, n_max)))


def write_game(root, game, truths, preds):
    """truths / preds: lists of (half, seconds, text[, label]) under root/labels and root/preds."""
    annotations = [{"gameTime": format_game_time(h, t), "label": rest[0] if rest else "comments",
                    "position": str(t * 1000), "anonymized": text} for h, t, text, *rest in truths]
    (root / "labels" / game).mkdir(parents=True, exist_ok=True)
    (root / "labels" / game / "Labels-caption.json").write_text(json.dumps({"annotations": annotations}))
    write_predictions(root / "preds" / game / "results_dense_captioning.json", game,
                      [{"half": h, "seconds": t, "comment": text, "label": rest[0] if rest else "comments"}
                       for h, t, text, *rest in preds])


def boundary_games(root, rng):
    """Three games where every prediction overlaps a ground truth at 30 s (but not all at 5 s): predictions 29 s
    from a ground truth, ground truths 30 s away (no overlap), several ground truths per prediction."""
    games = [f"league/2024-2025/game {i}" for i in range(3)]
    for game in games:
        truths, preds = [], []
        for half in (1, 2):
            base = rng.randint(10, 100)
            for k in range(rng.randint(3, 6)):
                t = base + 70 * k
                truths.append((half, t, sentence(rng)))
                preds.append((half, t + 29, sentence(rng)))      # overlaps at 30 (|dt| = 29), not at 5
                text = truths[-1][2] if k == 0 else sentence(rng)  # a perfect match (METEOR's chunk rule)
                preds.append((half, t + rng.choice([-4, 0, 4]), text))
            truths.append((half, base + 70 * k + 59, sentence(rng)))  # 30 s after the last +29 prediction
            truths.append((half, base + 12, sentence(rng)))           # a second match for some predictions
        write_game(root, game, truths, preds)
    return games


def official_evaluate(root, games, window):
    from SoccerNet.Evaluation import DenseVideoCaptioning as official

    with contextlib.redirect_stdout(io.StringIO()):
        scores = official.evaluate(str(root / "labels"), str(root / "preds"),
                                   prediction_file="results_dense_captioning.json", version=2,
                                   window_size=window, include_SODA=False)
    return {**{k: float(v) for k, v in scores.items()}, "F1": f1(scores["Precision"], scores["Recall"])}


@pytest.fixture(scope="module")
def evaluator():
    if shutil.which("java") is None:
        pytest.skip("java is not installed (PTB tokenizer, METEOR)")
    with Evaluator() as ev:
        yield ev


@pytest.fixture
def official(monkeypatch, evaluator):
    """The official module with its game list patched to the fixture games and our METEOR process lent to it
    (METEOR is stateless per call; this saves a JVM start)."""
    official = pytest.importorskip("SoccerNet.Evaluation.DenseVideoCaptioning")
    monkeypatch.setattr(official, "Meteor", lambda: evaluator.meteor._meteor)

    def use_games(games):
        monkeypatch.setattr(official, "getListGames", lambda split, task: list(games))
    return use_games


# --- rules and scorers (no Java) -----------------------------------------------------------------------------


def test_window_rule_is_tiou_above_zero():
    # @30: |dt| <= 29 overlaps; tight (5): |dt| <= 4
    assert overlaps([100], [71, 70, 129, 130], 30).tolist() == [[True, False, True, False]]
    assert overlaps([100], [96, 95, 104, 105], 5).tolist() == [[True, False, True, False]]
    assert overlaps([], [1], 30).shape == (0, 1)


def test_lcs_matches_pycocoevalcap():
    from pycocoevalcap.rouge.rouge import my_lcs

    rng = random.Random(0)
    for _ in range(300):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 12))]
        b = [rng.choice("abcdef") for _ in range(rng.randint(0, 12))]
        assert lcs_length(a, b) == my_lcs(a, b)


def test_text_scores_match_pycocoevalcap():
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    rng = random.Random(1)
    scorer = TextScorer()
    vocab = "the a ball goal kick corner shot player team save wide".split()
    for _ in range(25):
        corpus = [(" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 9))),
                   " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 9)))) for _ in range(rng.randint(1, 30))]
        corpus += corpus[: rng.randint(0, 3)]  # repeated pairs, as many-to-many matching makes them
        gts = {i: [r] for i, (_, r) in enumerate(corpus)}
        res = {i: [h] for i, (h, _) in enumerate(corpus)}
        bleu = BleuScorer(n=4)
        for h, r in corpus:
            bleu += (h, [r])
        expected = dict(zip(["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"],
                            bleu.compute_score(option="closest", verbose=0)[0], strict=True))
        expected["ROUGE_L"] = Rouge().compute_score(gts, res)[0]
        expected["CIDEr"] = Cider().compute_score(gts, res)[0]
        got = scorer.scores(corpus)
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key


@needs_java
def test_meteor_per_corpus_does_not_depend_on_batching(evaluator):
    """Statistics computed for all corpora at once, in any order, give pycocoevalcap's per-corpus METEOR."""
    rng = random.Random(5)
    vocab = "the a ball goal kick corner shot player team save wide runs running".split()
    corpora = []
    for _ in range(6):
        corpus = [(" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 8))),
                   " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 8)))) for _ in range(rng.randint(1, 12))]
        corpora.append(corpus + [("the ball", "the ball"), ("kick the ball", "the ball kick")])  # perfect matches
    pairs = [p for c in corpora for p in c]
    rng.shuffle(pairs)
    evaluator.meteor.cache_stats(pairs)
    official = evaluator.meteor._meteor  # pycocoevalcap's Meteor: SCORE per pair, then EVAL per corpus
    for corpus, ours in zip(corpora, evaluator.meteor.scores(corpora), strict=True):
        gts = {i: [r] for i, (_, r) in enumerate(corpus)}
        res = {i: [h] for i, (h, _) in enumerate(corpus)}
        assert ours == official.compute_score(gts, res)[0]


# --- parity with the official evaluator ------------------------------------------------------------------------


@needs_java
def test_equals_official_where_every_prediction_overlaps(tmp_path, evaluator, official):
    games = boundary_games(tmp_path, random.Random(2))
    official(games)
    ours = evaluator.evaluate(tmp_path / "labels", tmp_path / "preds", games, window=30)
    assert ours["counts"]["unmatched_predictions"] == 0 and ours["counts"]["halves"] == 6
    expected = official_evaluate(tmp_path, games, 30)
    for key in METRICS:
        assert ours["metrics"][key] == pytest.approx(expected[key], abs=1e-9), key
    # tight window on the same games: unmatched predictions bring random strings in
    ours = evaluator.evaluate(tmp_path / "labels", tmp_path / "preds", games, window=5)
    assert ours["counts"]["unmatched_predictions"] > 0
    expected = official_evaluate(tmp_path, games, 5)
    for key in METRICS:
        assert ours["metrics"][key] == pytest.approx(expected[key], abs=0.005), key


# --- reproducibility and robustness ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Two games with unmatched predictions, a half without predictions and a half without ground truth."""
    root = tmp_path_factory.mktemp("mixed")
    rng = random.Random(3)
    write_game(root, "g/a", truths=[(1, t, sentence(rng)) for t in (10, 200, 400)] + [(2, 50, sentence(rng))],
               preds=[(1, t, sentence(rng)) for t in (15, 100, 390, 900)] + [(1, 20, "Müller scores\n|||again")])
    write_game(root, "g/b", truths=[(1, 30, sentence(rng), "corner"), (1, 600, sentence(rng), "y-card")],
               preds=[(1, 31, sentence(rng)), (2, 500, sentence(rng))])
    return root, ["g/a", "g/b"]


@needs_java
def test_reruns_are_identical_and_seed_changes_only_random_strings(evaluator, mixed):
    root, games = mixed
    first = evaluator.evaluate(root / "labels", root / "preds", games, seed=7)
    assert first == evaluator.evaluate(root / "labels", root / "preds", games, seed=7)
    other = evaluator.evaluate(root / "labels", root / "preds", games, seed=8)
    assert other["metrics"]["Recall"] == first["metrics"]["Recall"]


@needs_java
def test_missing_halves_are_scored_not_crashed(evaluator, mixed):
    root, games = mixed
    result = evaluator.evaluate(root / "labels", root / "preds", games)
    halves = {(h["game"], h["half"]): h for h in result["halves"]}
    assert set(halves) == {("g/a", 1), ("g/a", 2), ("g/b", 1), ("g/b", 2)}
    no_preds, no_truth = halves["g/a", 2], halves["g/b", 2]
    assert no_preds["predictions"] == 0 and no_preds["METEOR"] == 0 and no_preds["Precision"] == 0
    assert no_preds["Recall"] == 0
    assert no_truth["ground_truths"] == 0 and no_truth["Recall"] is None and no_truth["Precision"] == 0
    # Recall averages the three halves with ground truth; Precision all four
    assert result["metrics"]["Recall"] == pytest.approx(np.mean([halves[k]["Recall"] for k in halves
                                                                  if halves[k]["Recall"] is not None]))
    assert result["metrics"]["Precision"] == pytest.approx(np.mean([h["Precision"] for h in halves.values()]))
    assert result["counts"]["halves_without_predictions"] == 1
    assert result["counts"]["halves_without_ground_truth"] == 1


@needs_java
def test_labels_outside_the_dictionary_are_counted(tmp_path, evaluator, mixed):
    root, games = mixed
    base = evaluator.evaluate(root / "labels", root / "preds", games)
    pred_file = root / "preds" / "g/b" / "results_dense_captioning.json"
    data = json.loads(pred_file.read_text())
    data["predictions"].append({**data["predictions"][0], "label": "goal", "comment": "something else"})
    (tmp_path / "preds" / "g/b").mkdir(parents=True)
    (tmp_path / "preds" / "g/b" / pred_file.name).write_text(json.dumps(data))
    shutil.copytree(root / "preds" / "g/a", tmp_path / "preds" / "g/a")
    with pytest.warns(UserWarning, match="goal"):
        result = evaluator.evaluate(root / "labels", tmp_path / "preds", games)
    assert result["counts"]["predictions_outside_dictionary"] == {"goal": 1}
    assert result["metrics"] == base["metrics"]


@needs_java
def test_control_characters_do_not_shift_captions(tmp_path, evaluator):
    rng = random.Random(4)
    truths = [(1, 10 * k, sentence(rng)) for k in range(6)]
    texts = [sentence(rng) for _ in range(6)]
    write_game(tmp_path / "clean", "g", truths, [(1, 10 * k + 1, t) for k, t in enumerate(texts)])
    dirty = [t.replace(" ", "\n", 1).replace(" ", " \x0c", 1) for t in texts]
    write_game(tmp_path / "dirty", "g", truths, [(1, 10 * k + 1, t) for k, t in enumerate(dirty)])
    clean = evaluator.evaluate(tmp_path / "clean/labels", tmp_path / "clean/preds", ["g"])
    assert evaluator.evaluate(tmp_path / "dirty/labels", tmp_path / "dirty/preds", ["g"])["metrics"] == clean["metrics"]


@needs_java
def test_missing_prediction_files_are_listed_together(evaluator, mixed):
    root, _ = mixed
    with pytest.raises(PredictionsError, match="2 of 3 prediction files are missing") as err:
        evaluator.evaluate(root / "labels", root / "preds", ["g/a", "g/x", "g/y"])
    assert "g/x/results_dense_captioning.json" in str(err.value) and "g/y/results" in str(err.value)


def test_malformed_predictions_name_the_file_and_entry(tmp_path):
    path = tmp_path / "results_dense_captioning.json"
    path.write_text(json.dumps({"predictions": [{"gameTime": "1 - 00:10", "label": "comments"}]}))
    with pytest.raises(PredictionsError, match=r"results_dense_captioning.json: prediction 0 lacks \['comment'\]"):
        load_predictions(path)
    path.write_text(json.dumps({"predictions": [{"gameTime": "3 - 00:10", "label": "comments", "comment": "x"}]}))
    with pytest.raises(PredictionsError, match="prediction 0: gameTime"):
        load_predictions(path)


def test_java_missing_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(java.shutil, "which", lambda name: None)
    with pytest.raises(JavaError, match="apt-get install default-jre-headless"):
        Evaluator()
    games = tmp_path / "games.txt"
    games.write_text("g\n")
    monkeypatch.setattr(dvc, "shared_evaluator", dvc.shared_evaluator.__wrapped__)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["evaluate", str(tmp_path), str(tmp_path), "--games", str(games)]) == 1
    assert "java" in err.getvalue() and "Traceback" not in err.getvalue()


# --- extras and the command -------------------------------------------------------------------------------------


def test_bootstrap_resamples_whole_games_and_is_seeded():
    """Each game's halves score 1 and 0: drawing games keeps every resample's mean at 0.5, drawing halves
    does not. Seeded: the same seed gives the same intervals."""
    halves = [{"game": g, "half": h, **dict.fromkeys(CAPTION_METRICS, float(h == 1)), "Recall": float(h == 1),
               "Precision": 1.0} for g in ("a", "b", "c") for h in (1, 2)]
    by_game = bootstrap_ci(halves, 500, 0.95, seed=3)
    assert by_game["unit"] == "game" and by_game["units"] == 3
    assert by_game["metrics"]["CIDEr"] == [0.5, 0.5] and by_game["metrics"]["Precision"] == [1.0, 1.0]
    by_half = bootstrap_ci(halves, 500, 0.95, seed=3, unit="half")
    lo, hi = by_half["metrics"]["CIDEr"]
    assert by_half["units"] == 6 and lo < 0.3 and hi > 0.7
    assert bootstrap_ci(halves, 500, 0.95, seed=3) == by_game
    halves[0]["Recall"] = None  # a half without ground truth is skipped by Recall's average, as by the mean
    assert all(0 <= x <= 1 for x in bootstrap_ci(halves, 200, 0.9, seed=0)["metrics"]["Recall"])


@needs_java
def test_per_label_and_bootstrap(evaluator, mixed):
    root, games = mixed
    result = evaluator.evaluate(root / "labels", root / "preds", games, per_label=True, bootstrap=200, seed=1)
    assert set(result["per_label"]) == {"comments", "corner", "y-card"}
    assert result["per_label"]["corner"]["Recall"] == 1.0 and result["per_label"]["y-card"]["Recall"] == 0.0
    assert result["per_label"]["y-card"]["pairs"] == 0 and result["per_label"]["y-card"]["CIDEr"] == 0
    for key in METRICS:
        lo, hi = result["ci"]["metrics"][key]
        assert lo <= hi
    assert result == evaluator.evaluate(root / "labels", root / "preds", games, per_label=True, bootstrap=200,
                                        seed=1)


@needs_java
def test_command_writes_the_same_json_twice(tmp_path, monkeypatch, evaluator, mixed):
    root, games = mixed
    monkeypatch.setattr(dvc, "shared_evaluator", lambda: evaluator)
    (tmp_path / "games.txt").write_text("\n".join(games) + "\n")
    outputs = []
    for name in ("a.json", "b.json"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["evaluate", str(root / "labels"), str(root / "preds"), "--games", str(tmp_path / "games.txt"),
                         "--window", "30", "--json", str(tmp_path / name), "--method", "STaR", "--encoder", "Baidu",
                         "--fps", "1", "--meta", "G.=yes"]) == 0
        outputs.append(out.getvalue())
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert outputs[0] == outputs[1] and "| METEOR:" in outputs[0]
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["meta"] == {"method": "STaR", "encoder": "Baidu", "fps": 1, "G.": "yes"}
    assert data["window"] == 30 and set(METRICS) <= set(data["metrics"])
    assert str(root / "preds" / "g/a" / "results_dense_captioning.json") in data["provenance"]["sources"]
    # the file makes a row of Table 1
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["tables", "--out", str(tmp_path / "t1.csv"), str(tmp_path / "a.json")]) == 0
    row = (tmp_path / "t1.csv").read_text().splitlines()[1].split(",")
    assert row[:3] == ["STaR", "Baidu", "1"] and float(row[4]) == round(100 * data["metrics"]["METEOR"], 2)


# --- on the synthetic world of the pipeline -------------------------------------------------------------------


def test_scores_the_synthetic_world(tiny_world, tmp_path, evaluator):
    """`star evaluate` on the world the workflow builds: the labels as predictions cover every ground truth (their
    text scores are below 1: within 30 s a prediction also meets its neighbours' captions, as in the official
    evaluator); the same captions 40 s late score far worse."""
    from star.data.soccernet import load_labels
    from star.data.predictions import write_predictions

    root = tiny_world / "results/world"
    games = [line for line in (root / "splits/test.txt").read_text().splitlines() if line]
    for name, shift in (("oracle", 0), ("late", 40)):
        for game in games:
            labels = load_labels(root / game / "Labels-caption.json")
            write_predictions(tmp_path / name / game / "results_dense_captioning.json", game, [
                {"half": a.half, "seconds": a.seconds + shift, "comment": a.anonymized, "label": a.label}
                for a in labels.annotations])
    oracle = evaluator.evaluate(root, tmp_path / "oracle", games, window=30)["metrics"]
    assert oracle["Recall"] == oracle["Precision"] == 1.0
    late = evaluator.evaluate(root, tmp_path / "late", games, window=30)["metrics"]
    assert late["Recall"] < 0.9
    assert all(late[key] < oracle[key] for key in ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr"))
