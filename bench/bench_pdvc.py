"""PDVC at SoccerNet scale on the CPU: a training step on 120-s clips of 8576-d features (Baidu's) and inference over
a whole 2700-s half (clips, captions, merging), for the `tiny` and `paper` presets.

    python bench/bench_pdvc.py [--presets tiny paper] [--rounds 3] [--threads 1]

Features are random (speed does not depend on their values); a training clip carries 2 events with 20-word captions
(SoccerNet: about one annotation per 70 s). For each preset it prints, as the median of `--rounds` rounds: the
forward + backward + AdamW step time at batch 1 and batch 8, the time to caption one half (`half_events`: 44 or 89
overlapping clips, every query's caption generated greedily up to 70 tokens, NMS merge) and the process's peak
resident memory. The paper preset is meant for a GPU; its CPU figures bound what a CPU run costs.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from star.infer.dense import half_events
from star.models import model_config
from star.models.pdvc import PDVC
from star.models.vocab import WordVocab
from star.train.dense import DenseCollate

SECONDS, DIM, FPS = 2700, 8576, 1.0
WORDS = [f"w{i}" for i in range(2000)]


def clip_sample(rng, clip: int) -> dict:
    captions = [" ".join(rng.choice(WORDS, 20)) for _ in range(2)]
    return {"features": rng.normal(size=(clip, DIM)).astype(np.float32), "mask": np.ones(clip, bool),
            "centre": np.array([clip * 0.3, clip * 0.7], np.float32), "label": np.array([0, 12]),
            "captions": captions, "half_samples": 5.0}


def median_time(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(preset: str, rounds: int) -> dict:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    vocab = WordVocab(WORDS)
    cfg = model_config("pdvc", preset)
    model = PDVC(cfg, DIM, vocab)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    clip = round(cfg.clip_s * FPS)
    out = {"preset": preset, "parameters": sum(p.numel() for p in model.parameters())}
    for batch_size in (1, 8):
        batch = DenseCollate(vocab, 70)([clip_sample(rng, clip) for _ in range(batch_size)])

        def step(batch=batch):
            optimizer.zero_grad()
            model(batch).backward()
            optimizer.step()

        step()  # warm-up
        out[f"train_step_b{batch_size}_s"] = round(median_time(step, rounds), 3)
    model.eval()
    features = rng.normal(size=(int(SECONDS * FPS), DIM)).astype(np.float32)
    events: list = []
    out["half_s"] = round(median_time(
        lambda: events.append(half_events(model, cfg, features, FPS, 70, torch.device("cpu"))), rounds), 2)
    out["events_per_half"] = len(events[-1])
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for preset in args.presets:
        print(bench(preset, args.rounds), flush=True)


if __name__ == "__main__":
    main()
