"""STaR's `paper` preset on whatever GPU is present: training samples/s and peak GPU memory.

    python bench/bench_gpu.py [--batch 16] [--seconds 2700] [--dim 8576] [--steps 20]
    python bench/bench_gpu.py --allow-cpu --seconds 120 --dim 512 --steps 2     # check the script on a CPU

Builds the paper preset's spotter and captioner (d=768, 8 latents, depth 6 x 16 heads x 96, GPT-2 medium with
random weights, hash grid of 16 levels: variant `default`, positions included) and trains each on synthetic
batches shaped as SoccerNet's (`--seconds` x `--dim` Baidu-like global features, 30-s windows, 32 player slots,
~20-token captions): forward, backward, AdamW step, fp32 and bf16 autocast, with each batch's samples from one half
(`halves_per_batch` 1: the global stage runs once a batch) and from `--batch` halves (uniform batches). Prints
samples/s (median of three timed blocks after warm-up) and peak allocated GPU memory per case. Batches are built
on the device once: this measures the model, not the loader (bench/bench_training.py measures that).

Without CUDA it says so and exits 0 (it has not been run on a GPU yet: bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_batch(cfg, tokenizer, batch: int, halves: int, seconds: int, dim: int, device):
    import torch

    from star.data.batch import Batch

    gen = torch.Generator().manual_seed(0)
    window = cfg.captioning_window_s
    captions = ["[PLAYER] ([TEAM]) curls the free kick over the wall and into the top corner."] * batch
    tokens, token_mask = tokenizer.encode_batch(captions, 70)
    batch_ = Batch(
        local=torch.randn(batch, window, dim, generator=gen), local_mask=torch.ones(batch, window, dtype=torch.bool),
        global_=torch.randn(halves, seconds, dim, generator=gen),
        global_mask=torch.ones(halves, seconds, dtype=torch.bool),
        positions=torch.rand(batch, window, cfg.max_players, 2, generator=gen) * torch.tensor([105.0, 68.0]),
        positions_mask=torch.rand(batch, window, cfg.max_players, generator=gen) < 0.7,
        anchor=torch.randint(window, seconds - window, (batch,), generator=gen),
        label=torch.randint(0, 14, (batch,), generator=gen), tokens=tokens, token_mask=token_mask,
        global_index=torch.arange(batch) % halves)
    return batch_.to(device)


def measure(model, loss_fn, batch, steps: int, autocast: bool, device) -> dict:
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up (kernels, allocator)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rates = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(steps * len(batch) / (time.perf_counter() - started))
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return {"samples_per_s": round(statistics.median(rates), 1), "runs": [round(r, 1) for r in rates],
            "peak_gpu_gib": round(peak, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="samples a step (the paper's 16)")
    parser.add_argument("--seconds", type=int, default=2700, help="global features per half")
    parser.add_argument("--dim", type=int, default=8576, help="feature dimension (Baidu: 8576)")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
    parser.add_argument("--allow-cpu", action="store_true", help="run on the CPU (to check the script)")
    args = parser.parse_args()

    import torch

    from star.models import build_captioner, build_spotter, model_config
    from star.models.tokenizer import gpt2_tokenizer
    from star.train.loop import captioning_loss, spotting_loss

    if torch.cuda.is_available():
        device = torch.device("cuda")
        print(f"device: {torch.cuda.get_device_name()}")
    elif args.allow_cpu:
        device = torch.device("cpu")
        print("device: CPU (--allow-cpu: a check of the script, not a GPU figure)")
    else:
        print("bench_gpu: no CUDA device; nothing measured (this script has not run on a GPU here)")
        return
    cfg = model_config("star", "paper")
    tokenizer = gpt2_tokenizer()
    results = []
    for stage in ("spotting", "captioning"):
        torch.manual_seed(0)
        model = (build_spotter("star", cfg, args.dim) if stage == "spotting"
                 else build_captioner("star", cfg, args.dim, tokenizer)).to(device).train()
        loss_fn = spotting_loss if stage == "spotting" else captioning_loss
        for halves in (1, args.batch):
            batch = make_batch(cfg, tokenizer, args.batch, halves, args.seconds, args.dim, device)
            for autocast in (False, True):
                result = {"stage": stage, "halves_per_batch": halves, "bf16_autocast": autocast,
                          **measure(model, loss_fn, batch, args.steps, autocast, device)}
                print(json.dumps(result), flush=True)
                results.append(result)
            del batch
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print("\n| stage | halves a batch | bf16 autocast | samples/s | peak GPU GiB |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['stage']} | {r['halves_per_batch']} | {r['bf16_autocast']} | {r['samples_per_s']} "
              f"| {r['peak_gpu_gib']} |")


if __name__ == "__main__":
    main()
