"""`star evaluate --protocol captioning` against a reference computation of nlg-eval's `compute_metrics`, written
here from the scorers' definitions (BLEU, ROUGE-L, CIDEr-D; METEOR through pycocoevalcap's own class, the scorer
nlg-eval copies), on captions that repeat, are empty once stripped, and hold non-ASCII text."""

import json
import math
import shutil
from collections import Counter

import pytest

from star.cli import main
from star.data.soccernet import format_game_time

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="java is not installed (METEOR)")

# (half, second, reference, caption): two annotations share a second; captions repeat, some are blank once
# stripped, some hold accents, symbols, a non-breaking space or a double space (left as is: only stripped)
GAMES = {
    "league/2020-2021/game A": [
        (1, 10, "[PLAYER] ([TEAM]) scores a fine goal!", "  [PLAYER] ([TEAM]) scores a goal!  "),
        (1, 10, "Corner for ([TEAM]).", "Corner for ([TEAM])."),
        (1, 55, "[PLAYER] is booked by [REFEREE].", "   \t "),
        (2, 3, "Müller's shot goes wide — a real chance.", "Müller shoots wide — a chance."),
        (2, 40, "Substitution: [PLAYER] replaces [PLAYER].", "Corner for ([TEAM])."),
    ],
    "league/2020-2021/game B": [
        (1, 7, "Corner for ([TEAM]) on the right.", "Corner for ([TEAM])."),
        (1, 90, "  [PLAYER]  volleys\u00a0over the bar.  ", "[PLAYER] volleys over the bar."),
        (2, 12, "¡Gol! [PLAYER] ([TEAM]) makes it 2-0 ⚽", "¡Gol! [PLAYER] ([TEAM]) scores ⚽"),
        (2, 60, "The referee [REFEREE] stops play.", ""),
    ],
}


def write_tree(root, preds_root, games=GAMES, drop=None):
    for game, rows in games.items():
        annotations = [{"gameTime": format_game_time(h, t), "label": "comments", "position": str(t * 1000),
                        "anonymized": ref} for h, t, ref, _ in rows]
        (root / game).mkdir(parents=True)
        (root / game / "Labels-caption.json").write_text(json.dumps({"annotations": annotations}))
        predictions = [{"gameTime": format_game_time(h, t), "label": "comments", "position": str(t * 1000),
                        "half": str(h), "confidence": "1.0", "comment": cap}
                       for i, (h, t, _, cap) in enumerate(rows) if (game, i) != drop]
        (preds_root / game).mkdir(parents=True)
        (preds_root / game / "results_dense_captioning.json").write_text(json.dumps({"predictions": predictions}))
    games_file = root / "games.txt"
    games_file.write_text("\n".join(games) + "\n")
    return games_file


# --------------------------------------------------------------------------------------------------------------
# the reference: nlg-eval's compute_metrics (coco-caption scorers), from their definitions


def ngrams(text: str, n_max: int = 4) -> Counter:
    words = text.split()
    return Counter(tuple(words[i:i + n]) for n in range(1, n_max + 1) for i in range(len(words) - n + 1))


def bleu(pairs) -> list[float]:
    """Corpus BLEU-1..4: clipped n-gram matches and candidate n-gram counts summed over the corpus; brevity penalty
    from the summed lengths (one reference: the closest is it); coco's smoothing constants 1e-15 and 1e-9."""
    correct, guess, hyp_len, ref_len = [0] * 4, [0] * 4, 0, 0
    for hyp, ref in pairs:
        h, r = ngrams(hyp), ngrams(ref)
        for gram, count in h.items():
            correct[len(gram) - 1] += min(count, r[gram])
        n_words = len(hyp.split())
        for n in range(4):
            guess[n] += max(0, n_words - n)
        hyp_len, ref_len = hyp_len + n_words, ref_len + len(ref.split())
    scores, log_sum = [], 0.0
    for n in range(4):
        log_sum += math.log((correct[n] + 1e-15) / (guess[n] + 1e-9))
        scores.append(math.exp(log_sum / (n + 1)))
    ratio = (hyp_len + 1e-15) / (ref_len + 1e-9)
    penalty = math.exp(1 - 1 / ratio) if ratio < 1 else 1.0
    return [s * penalty for s in scores]


def rouge_l(pairs) -> float:
    """Mean over captions of the LCS F-measure (beta 1.2) on tokens split at single spaces."""
    scores = []
    for hyp, ref in pairs:
        h, r = hyp.split(" "), ref.split(" ")
        table = [[0] * (len(h) + 1) for _ in range(len(r) + 1)]
        for i in range(1, len(r) + 1):
            for j in range(1, len(h) + 1):
                table[i][j] = (table[i - 1][j - 1] + 1 if r[i - 1] == h[j - 1]
                               else max(table[i - 1][j], table[i][j - 1]))
        lcs = table[-1][-1]
        p, rec = lcs / len(h), lcs / len(r)
        scores.append((1 + 1.2**2) * p * rec / (rec + 1.2**2 * p) if p and rec else 0.0)
    return sum(scores) / len(scores)


def cider_d(pairs) -> float:
    """CIDEr-D: tf-idf n-gram vectors (idf from the references of the whole corpus), per order the clipped
    cosine with a Gaussian length penalty (sigma 6, lengths counted in bigrams), averaged, x10; mean over
    captions."""
    n_docs = len(pairs)
    df = Counter(gram for _, ref in pairs for gram in set(ngrams(ref)))

    def vector(text):
        counts = ngrams(text)
        vec = {g: c * (math.log(n_docs) - math.log(max(1.0, df[g]))) for g, c in counts.items()}
        norms = [math.sqrt(sum(w * w for g, w in vec.items() if len(g) == n)) for n in range(1, 5)]
        return vec, norms, sum(c for g, c in counts.items() if len(g) == 2)

    scores = []
    for hyp, ref in pairs:
        (vh, nh, lh), (vr, nr, lr) = vector(hyp), vector(ref)
        per_order = []
        for n in range(1, 5):
            value = sum(min(w, vr.get(g, 0.0)) * vr.get(g, 0.0) for g, w in vh.items() if len(g) == n)
            if nh[n - 1] and nr[n - 1]:
                value /= nh[n - 1] * nr[n - 1]
            per_order.append(value * math.exp(-((lh - lr) ** 2) / (2 * 6.0**2)))
        scores.append(10.0 * sum(per_order) / 4)
    return sum(scores) / len(scores)


def nlgeval_reference(games=GAMES) -> dict:
    pairs = [(cap.strip(), ref.strip()) for rows in games.values() for _, _, ref, cap in rows]
    from pycocoevalcap.meteor.meteor import Meteor

    meteor = Meteor()  # its JVM ends with the object
    meteor_score, _ = meteor.compute_score({i: [r] for i, (_, r) in enumerate(pairs)},
                                           {i: [h] for i, (h, _) in enumerate(pairs)})
    del meteor
    b = bleu(pairs)
    return {"Bleu_1": b[0], "Bleu_2": b[1], "Bleu_3": b[2], "Bleu_4": b[3], "METEOR": meteor_score,
            "ROUGE_L": rouge_l(pairs), "CIDEr": cider_d(pairs)}


# --------------------------------------------------------------------------------------------------------------


def test_reference_bleu_and_cider_by_hand():
    # one caption: "a b c" vs reference "a b d": 2/3 unigrams, 1/2 bigrams, 0/1 trigrams (smoothed)
    b = bleu([("a b c", "a b d")])
    assert b[0] == pytest.approx(2 / 3) and b[1] == pytest.approx(math.sqrt(2 / 3 * 1 / 2))
    # captions equal to their references, sharing no n-gram: idf > 0 everywhere, cosine 1 in each order -> 10
    assert cider_d([("a b c d", "a b c d"), ("p q r s", "p q r s")]) == pytest.approx(10.0)


def test_resampled_cider_equals_cider_of_each_resampled_corpus():
    """The bootstrap scores CIDEr of 1000 resamples from tables built once; each must be the CIDEr of the corpus
    that repeats its games (an n-gram in every reference, an empty caption and shared texts included)."""
    import numpy as np

    from star.eval.scorers import TextScorer

    groups = [[("the ball goes wide", "the ball goes just wide"), ("a corner", "the corner is taken short")],
              [("the ball goes wide", "the keeper saves the ball"), ("", "the referee shows a card")],
              [("the keeper saves", "the keeper saves the ball"), ("a card for the defender", "a card")],
              []]
    counts = np.random.default_rng(0).integers(0, 3, (40, len(groups)))
    counts[0] = [1, 1, 1, 1]
    counts[1] = [0, 0, 0, 2]  # only the empty group: an empty corpus
    fast = TextScorer().cider_d_resampled(groups, counts)
    slow = TextScorer()
    for row, value in zip(counts, fast, strict=True):
        corpus = [pair for group, n in zip(groups, row, strict=True) for _ in range(n) for pair in group]
        assert value == pytest.approx(slow.cider_d(corpus) if corpus else 0.0, rel=1e-12, abs=1e-12)
    assert len(set(np.round(fast, 9))) > 10  # the resamples differ


@needs_java
def test_captioning_protocol_equals_nlgeval(tmp_path):
    games_file = write_tree(tmp_path / "labels", tmp_path / "preds")
    out = tmp_path / "cap.json"
    assert main(["evaluate", str(tmp_path / "labels"), str(tmp_path / "preds"), "--games", str(games_file),
                 "--protocol", "captioning", "--json", str(out), "--method", "STaR"]) == 0
    result = json.loads(out.read_text())
    assert result["protocol"] == "captioning" and result["window"] is None and result["meta"]["method"] == "STaR"
    assert result["counts"]["captions"] == 9 and result["counts"]["empty_captions"] == 2
    expected = nlgeval_reference()
    assert set(result["metrics"]) == set(expected)
    for key, value in expected.items():
        assert result["metrics"][key] == pytest.approx(value, abs=1e-9, rel=0), key
    assert 0 < result["metrics"]["METEOR"] < 1 and result["metrics"]["CIDEr"] > 0


@needs_java
def test_both_protocols_joined_by_and_write_what_they_write_apart(tmp_path):
    """The workflow evaluates a run at the spots (dense @30) and at the ground truth (captioning subtask) in one
    process: one METEOR JVM; every call's arguments are checked before the first starts."""
    games_file = write_tree(tmp_path / "labels", tmp_path / "preds")
    roots = [str(tmp_path / "labels"), str(tmp_path / "preds"), "--games", str(games_file), "--bootstrap", "20"]
    calls = [[*roots, "--window", "30"], [*roots, "--protocol", "captioning"]]
    joined = [tmp_path / "joined" / f"{i}.json" for i in (0, 1)]
    with pytest.raises(SystemExit):  # the second call's bad window: nothing runs
        main(["evaluate", *calls[0], "--json", str(joined[0]), "--and", *calls[1], "--window", "x"])
    assert not joined[0].exists()
    assert main(["evaluate", *calls[0], "--json", str(joined[0]), "--and", *calls[1], "--json", str(joined[1])]) == 0
    for call, path in zip(calls, joined, strict=True):
        assert main(["evaluate", *call, "--json", str(tmp_path / "alone.json")]) == 0
        assert path.read_bytes() == (tmp_path / "alone.json").read_bytes()


def test_an_annotation_without_its_caption_is_named(tmp_path, capsys):
    games_file = write_tree(tmp_path / "labels", tmp_path / "preds", drop=("league/2020-2021/game B", 2))
    assert main(["evaluate", str(tmp_path / "labels"), str(tmp_path / "preds"), "--games", str(games_file),
                 "--protocol", "captioning"]) != 0
    assert ("game B/results_dense_captioning.json: no caption for the annotation at '2 - 00:12'"
            in capsys.readouterr().err)


@needs_java
def test_game_bootstrap_scores_each_resample_as_a_corpus(tmp_path, monkeypatch):
    from star.eval import captioning

    games_file = write_tree(tmp_path / "labels", tmp_path / "preds")
    games = games_file.read_text().split("\n")[:2]
    args = (tmp_path / "labels", tmp_path / "preds", games)
    point = captioning.evaluate_captioning(*args)["metrics"]
    result = captioning.evaluate_captioning(*args, bootstrap=40, seed=3)
    assert result["ci"]["unit"] == "game" and result["ci"]["units"] == 2
    assert all(lo <= hi for lo, hi in result["ci"]["metrics"].values())
    assert captioning.evaluate_captioning(*args, bootstrap=40, seed=3) == result  # seeded
    # a resample that draws each game once is the split itself; one that draws game A twice is A's corpus doubled
    monkeypatch.setattr(captioning, "resample_counts", lambda units, n, seed: [[1, 1], [1, 1]])
    same = captioning.evaluate_captioning(*args, bootstrap=2)["ci"]["metrics"]
    assert all(same[k] == pytest.approx([v, v], abs=1e-12) for k, v in point.items())
    monkeypatch.setattr(captioning, "resample_counts", lambda units, n, seed: [[2, 0]])
    doubled = captioning.evaluate_captioning(*args, bootstrap=1)["ci"]["metrics"]
    pairs, _ = captioning.game_pairs(tmp_path / "labels" / games[0] / "Labels-caption.json",
                                     tmp_path / "preds" / games[0] / "results_dense_captioning.json")
    expected = captioning.score_corpus(pairs + pairs)
    assert all(doubled[k] == pytest.approx([expected[k]] * 2, abs=1e-12) for k in point)
