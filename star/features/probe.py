"""`star features-probe`: do the features carry event information? A linear probe says.

A logistic regression (standardized inputs, class-balanced loss) maps one feature to the label of its time
(star.data.soccernet.sample_labels: background or the caption label of an annotation within
`event_radius_s`). It is fit on train halves and scored on held-out halves by balanced accuracy over the
classes present, against chance (1 / #classes) and the majority-class rate. The same probe on the mean colour
of the frames (when frames caches are given) is a sanity baseline: features must beat it to be worth using.

Training rows are a seeded random subset (`max_train_samples`), read one half at a time, so 8576-d Baidu
features of the whole SoccerNet train split fit in memory; test halves are scored one at a time.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from star.config import section
from star.data.cache import open_cache
from star.data.soccernet import CLASSES, load_labels, sample_labels
from star.errors import InputError
from star.features.finetune import paired

READ_CHUNK = 256  # frames read at a time for the mean-colour baseline


def half_labels(h5, labels_path: str, radius_s: float) -> np.ndarray:
    """Class index of every row of an open features cache, from its half's annotations."""
    times = np.arange(len(h5["features"]), dtype=np.float64) / float(h5.attrs["fps"])
    return sample_labels(load_labels(labels_path).half(int(h5.attrs["half"])), times, radius_s)


def mean_colours(frames_path: str, fps: float, n_rows: int) -> np.ndarray:
    """[n_rows, 3] mean RGB of the frame nearest each feature row's time (row i at i / fps)."""
    from star.features.clips import nearest_frames

    with open_cache(frames_path, "frames") as h5:
        n = len(h5["times"])
        means = np.concatenate([h5["frames"][i:i + READ_CHUNK].mean(axis=(1, 2)) for i in range(0, n, READ_CHUNK)])
        index = nearest_frames(np.arange(n_rows) / fps, h5["times"][:])
    return means[index].astype(np.float32)


def load_train(halves, radius_s: float, max_samples: int, seed: int, with_colour: bool):
    """(features [n, D], colours [n, 3] or None, labels [n]): a random subset of all train rows."""
    rng = np.random.default_rng(seed)
    sizes, dims = [], set()
    for features_path, *_ in halves:
        with open_cache(features_path, "features") as h5:
            sizes.append(len(h5["features"]))
            dims.add(int(h5.attrs["dim"]))
    if len(dims) > 1:
        raise InputError(f"train features differ in dimension {sorted(dims)}: {[h[0] for h in halves]}")
    keep = np.sort(rng.permutation(sum(sizes))[:max_samples])
    starts = np.cumsum([0, *sizes])
    features, colours, labels = [], [], []
    for (features_path, labels_path, frames_path), start, stop in zip(halves, starts[:-1], starts[1:], strict=True):
        rows = keep[(keep >= start) & (keep < stop)] - start
        with open_cache(features_path, "features") as h5:
            features.append(h5["features"][:][rows])  # one half in memory at a time
            labels.append(half_labels(h5, labels_path, radius_s)[rows])
            if with_colour:
                colours.append(mean_colours(frames_path, float(h5.attrs["fps"]), len(h5["features"]))[rows])
    return np.concatenate(features), np.concatenate(colours) if with_colour else None, np.concatenate(labels)


def fit_probe(x: np.ndarray, y: np.ndarray, cfg: dict, seed: int):
    probe = make_pipeline(StandardScaler(), LogisticRegression(
        C=cfg["C"], max_iter=cfg["max_iter"], class_weight="balanced", random_state=seed))
    return probe.fit(x, y)


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Balanced accuracy over the classes present, plain accuracy, event-vs-background balanced accuracy, and the
    confusion matrix (rows: true class, columns: predicted; over the classes either side names)."""
    present = np.unique(y_true)
    named = np.union1d(present, np.unique(y_pred))
    return {
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "event_vs_background_balanced_accuracy": float(balanced_accuracy_score(y_true > 0, y_pred > 0))
        if len(np.unique(y_true > 0)) > 1 else None,
        "recall_per_class": {CLASSES[c]: float(np.mean(y_pred[y_true == c] == c)) for c in present},
        "confusion": {"classes": [CLASSES[c] for c in named],
                      "matrix": confusion_matrix(y_true, y_pred, labels=named).tolist()},
    }


def evaluate(halves, probes: dict, radius_s: float, dim: int) -> dict:
    """Score every probe on every test half (one half in memory at a time)."""
    truth, predicted = [], {name: [] for name in probes}
    for features_path, labels_path, frames_path in tqdm(halves, desc="probe test", unit="half"):
        with open_cache(features_path, "features", dim=dim) as h5:
            truth.append(half_labels(h5, labels_path, radius_s))
            inputs = {"features": h5["features"][:]}
            if "mean_colour" in probes:
                inputs["mean_colour"] = mean_colours(frames_path, float(h5.attrs["fps"]), len(h5["features"]))
        for name, probe in probes.items():
            predicted[name].append(probe.predict(inputs[name]))
    y_true = np.concatenate(truth)
    counts = np.bincount(y_true, minlength=len(CLASSES))
    report = {
        "test_samples": len(y_true),
        "test_class_counts": {CLASSES[c]: int(n) for c, n in enumerate(counts) if n},
        "chance_balanced_accuracy": 1.0 / np.count_nonzero(counts),
        "majority_class_rate": float(counts.max() / counts.sum()),
    }
    for name in probes:
        report[name] = scores(y_true, np.concatenate(predicted[name]))
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", nargs="+", required=True, help="features caches of the train halves")
    parser.add_argument("--train-labels", nargs="+", required=True,
                        help="Labels-caption.json of each train features cache, in the same order")
    parser.add_argument("--test", nargs="+", required=True, help="features caches of the held-out halves")
    parser.add_argument("--test-labels", nargs="+", required=True,
                        help="Labels-caption.json of each test features cache, in the same order")
    parser.add_argument("--train-frames", nargs="*",
                        help="frames caches of the train halves, same order (adds the mean-colour baseline)")
    parser.add_argument("--test-frames", nargs="*", help="frames caches of the test halves, same order")
    parser.add_argument("--out", required=True, help="JSON report to write")
    parser.add_argument("--config", help="features.probe section: inline JSON or a YAML file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training subset and the solver")


def halves_of(features: list[str], labels: list[str], frames: list[str] | None, name: str):
    """(features, labels, frames or None) per half, checking the lists pair up."""
    pairs = paired(features, labels, f"--{name}/--{name}-labels")
    if frames is None:
        return [(f, lab, None) for f, lab in pairs]
    paired(features, frames, f"--{name}/--{name}-frames")
    return [(f, lab, fr) for (f, lab), fr in zip(pairs, frames, strict=True)]


def run(args: argparse.Namespace) -> int:
    from star.provenance import code_hash, record, write_text_atomic

    cfg = section("features.probe", args.config)
    args.train_frames, args.test_frames = args.train_frames or None, args.test_frames or None  # empty = none
    if (args.train_frames is None) != (args.test_frames is None):
        raise InputError("the mean-colour baseline needs both --train-frames and --test-frames")
    with_colour = args.train_frames is not None
    train = halves_of(args.train, args.train_labels, args.train_frames, "train")
    test = halves_of(args.test, args.test_labels, args.test_frames, "test")
    x, colours, y = load_train(train, cfg["event_radius_s"], cfg["max_train_samples"], args.seed, with_colour)
    if len(np.unique(y)) < 2:
        raise InputError(f"train labels hold a single class ({CLASSES[y[0]]!r}): nothing to probe "
                         f"({', '.join(args.train_labels)})")
    probes = {"features": fit_probe(x, y, cfg, args.seed)}
    if with_colour:
        probes["mean_colour"] = fit_probe(colours, y, cfg, args.seed)
    with open_cache(args.train[0], "features") as h5:
        encoder, dim = str(h5.attrs["encoder"]), int(h5.attrs["dim"])
    report = {
        **record("features-probe", cfg, code_hash(__name__), sources=[*args.train, *args.test], seed=args.seed),
        "encoder": encoder,
        "dim": dim,
        "train_samples": len(y),
        "train_class_counts": {CLASSES[c]: int(n) for c, n in enumerate(np.bincount(y)) if n},
        **evaluate(test, probes, cfg["event_radius_s"], dim),
    }
    write_text_atomic(args.out, json.dumps(report, indent=1) + "\n")
    line = f"balanced accuracy {report['features']['balanced_accuracy']:.3f}"
    if with_colour:
        line += f" (mean colour {report['mean_colour']['balanced_accuracy']:.3f})"
    print(f"star features-probe: {encoder}: {line}, chance {report['chance_balanced_accuracy']:.3f}, "
          f"majority rate {report['majority_class_rate']:.3f}")
    return 0
