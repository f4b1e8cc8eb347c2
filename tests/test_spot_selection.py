"""Each method's spot selection, as its own code does it, on one hand-worked half of 60 seconds."""

import numpy as np
import pytest

from star.config import validate
from star.infer.spots import select_spots, selection_rule

# second -> {label index: probability}; background takes the rest; every other second is all background
PEAKS = {
    2: {0: 0.69},            # below STaR's 0.7; above SDVC's 0.5
    14: {1: 0.80},
    15: {2: 0.85},           # i - 15 of the spot at 30: suppressed by a class-agnostic NMS there
    30: {4: 0.90},           # the best second
    44: {3: 0.76},           # i + 14 of 30: suppressed
    45: {3: 0.75},           # i + 15 of 30: not suppressed ([i - 15, i + 15) is half-open)
    50: {6: 0.50, 7: 0.50},  # no background at all, but no single class reaches 0.7
}


def half_probs(peaks=PEAKS, seconds=60) -> np.ndarray:
    probs = np.zeros((seconds, 14))
    probs[:, 0] = 1.0
    for second, labels in peaks.items():
        for label, p in labels.items():
            probs[second, 1 + label] = p
        probs[second, 0] = 1.0 - sum(labels.values())
    return probs


def spots(rule, probs=None, threshold=0.7, per_label_threshold=0.5):
    found = select_spots(half_probs() if probs is None else probs, rule, 30, threshold, per_label_threshold)
    return [(s, k, round(c, 6)) for s, k, c in found]


def test_star_and_delta_take_the_best_class_with_class_agnostic_nms_at_0_7():
    # 30 (0.90) first: suppresses [15, 45) -> 15 and 44 go, 14 and 45 stay; then 14 (0.80) suppresses [0, 29);
    # then 45 (0.75) suppresses [30, 60). 2 (0.69) and 50 (0.50 at most per class) never reach 0.7.
    assert spots("max_class") == [(14, 1, 0.8), (30, 4, 0.9), (45, 3, 0.75)]


def test_star_and_delta_emit_nothing_where_nothing_passes():
    weak = half_probs({10: {2: 0.6}, 40: {5: 0.65}})
    assert spots("max_class", weak) == []


def test_sdvc_runs_nms_per_label_and_keeps_every_label():
    # each label's own column: label 3 keeps 44 (0.76) which suppresses its 45; labels 6 and 7 both spot 50
    # (0.5 >= 0.5); 15 (label 2) survives the spot at 30 (label 4): another label; 2 passes SDVC's 0.5
    assert spots("per_label") == [(2, 0, 0.69), (14, 1, 0.8), (15, 2, 0.85), (30, 4, 0.9), (44, 3, 0.76),
                                  (50, 6, 0.5), (50, 7, 0.5)]
    assert spots("per_label", per_label_threshold=0.8) == [(14, 1, 0.8), (15, 2, 0.85), (30, 4, 0.9)]


def test_background_rule_scores_1_minus_background_and_keeps_the_best_when_nothing_passes():
    # 50 (1 - 0 = 1.0) first, removing |dt| <= 15: 44, 45; then 30 removes 15 (and 45); then 14 removes 2
    assert spots("background", threshold=0.2) == [(14, 1, 0.8), (30, 4, 0.9), (50, 6, 1.0)]
    weak = half_probs({10: {2: 0.1}, 40: {5: 0.15}})
    assert spots("background", weak, threshold=0.2) == [(40, 5, 0.15)]   # the best second of the half stays


def test_each_method_gets_its_own_rule_unless_one_is_named():
    paper = validate({"model": {"preset": "paper"}})["spotting"]
    assert paper["selection"] is None and paper["threshold"] == 0.7 and paper["nms_window_s"] == 30
    assert [selection_rule(paper, m) for m in ("sdvc", "delta", "star")] == ["per_label", "max_class", "max_class"]
    tiny = validate({})["spotting"]
    assert [selection_rule(tiny, m) for m in ("sdvc", "delta", "star")] == ["background"] * 3
    with pytest.raises(ValueError, match="unknown spot selection"):
        select_spots(half_probs(), "best", 30, 0.7, 0.5)
