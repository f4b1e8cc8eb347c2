"""Vid2Seq at SoccerNet scale on the CPU: a training step on clips of 8576-d features (Baidu's) and the cost of
captioning a whole 2700-s half, for the `tiny` and `paper` presets.

    python bench/bench_vid2seq.py [--presets tiny paper] [--rounds 3] [--threads 1]

Features are random (speed does not depend on their values) and the weights initial; the vocabulary has the
preset's size (tiny: a 2000-token BPE; paper: T5's 32100 tokens), plus 100 time tokens. A training clip carries 2
events with 20-word captions (SoccerNet: about one annotation per 70 s). For each preset it prints, as the median of
`--rounds` rounds of CPU time: the forward + backward + AdamW step at batch 1 and batch 8; one clip's prediction
(`predict`: generation, parsing, the confidence pass; an untrained model writes until the 256-token limit, so this
is the worst case) and that times the clips of a half (`clip_s` clips every `infer_stride_s`); the process's peak
resident memory.
The paper preset is meant for a GPU; its CPU figures bound what a CPU run costs.
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
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models, pre_tokenizers

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from star.models import model_config
from star.models.dense import ClipEvents, DenseBatch, clip_starts
from star.models.tokenizer import Tokenizer
from star.models.vid2seq import Vid2Seq

SECONDS, DIM, FPS = 2700, 8576, 1.0
VOCAB = {"tiny": 2000, "paper": 32100}


def word_tokenizer(size: int) -> Tokenizer:
    """A tokenizer of `size` tokens (pad, end, then words w0, w1, ...): the vocabulary size is what costs."""
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{f"w{i}": 3 + i for i in range(size - 3)}}
    hf = HFTokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    hf.add_special_tokens(["<pad>", "</s>"])
    return Tokenizer(hf, "bench", end_token="</s>", pad_token="<pad>")


def clip_batch(rng, tokenizer: Tokenizer, clip: int, batch_size: int) -> DenseBatch:
    events = []
    for _ in range(batch_size):
        tokens, token_mask = tokenizer.encode_batch(
            [" ".join(f"w{i}" for i in rng.integers(0, 1900, 20)) for _ in range(2)], 70)
        centre = torch.tensor([clip * 0.3, clip * 0.7])
        events.append(ClipEvents(centre, centre - 5, centre + 5, torch.zeros(2, dtype=torch.long), tokens,
                                 token_mask))
    features = torch.from_numpy(rng.normal(size=(batch_size, clip, DIM)).astype(np.float32))
    return DenseBatch(features, torch.ones(batch_size, clip, dtype=torch.bool), events)


def median_time(fn, rounds: int) -> float:
    """Median CPU seconds of this process (with one torch thread, the wall time on an idle machine; the machine
    these figures come from is shared, where wall times mostly measure the other jobs)."""
    times = []
    for _ in range(rounds):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def bench(preset: str, rounds: int) -> dict:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    tokenizer = word_tokenizer(VOCAB[preset])
    cfg = model_config("vid2seq", preset)
    model = Vid2Seq(cfg, DIM, tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    clip = round(cfg.clip_s * FPS)
    out = {"preset": preset, "parameters": sum(p.numel() for p in model.parameters())}
    for batch_size in (1, 8):
        batch = clip_batch(rng, tokenizer, clip, batch_size)

        def step(batch=batch):
            optimizer.zero_grad()
            model(batch).backward()
            optimizer.step()

        step()  # warm-up
        out[f"train_step_b{batch_size}_s"] = round(median_time(step, rounds), 3)
    model.eval()
    features = torch.from_numpy(rng.normal(size=(clip, DIM)).astype(np.float32))
    out["clip_predict_s"] = round(median_time(lambda: model.predict(features, fps=FPS, max_tokens=70), rounds), 2)
    clips = len(clip_starts(int(SECONDS * FPS), clip, round(cfg.infer_stride_s * FPS)))
    out["clips_per_half"] = clips
    out["half_s"] = round(out["clip_predict_s"] * clips, 1)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"], choices=["tiny", "paper"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for preset in args.presets:
        print(bench(preset, args.rounds), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
