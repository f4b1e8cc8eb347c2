"""Print the mechanism tests' agreements (tests/test_mechanisms.py): each path with and without its signal.

    python bench/mechanisms.py [--captioner-recall-steps 800]

Trains, as the tests do (seed 0, one torch thread): STaR captioners on the side task with the tiny preset's SSS,
the authors' two-block SSS and no SSS (the pipeline's lr 1e-3 and 300 steps); STaR spotters on the attack task
(the ball's side relative to its carrier's attack direction) whose SSS reads team, role and the ball, or positions
alone; STaR spotters on the recall task with and without global features; STaR
captioners on the recall task, with the context capturer of that spotter, and from scratch with and without
global features. Prints held-out agreement, and with the path cut at test time (positions or global features
masked). About 3 minutes on a quiet 2-core CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from star.models import build_captioner, build_spotter
from star.train.loop import captioning_loss, seed_everything, spotting_loss
from tests import test_mechanisms as tm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captioner-recall-steps", type=int, default=tm.SCRATCH_RECALL_STEPS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| task | model | path | agreement | path cut at test time |\n|---|---|---|---|---|")
    side = tm.Samples("side", tm.task("side", 200, 2), tm.TOKENIZER)
    for name, switches in (("SSS (tiny)", {}), ("SSS (2 blocks)", {"sss_blocks": 2}),
                           ("no SSS", {"use_positions": False})):
        seed_everything(0)
        model = build_captioner("star", tm.config(**switches), tm.D, tm.TOKENIZER)
        tm.train(model, captioning_loss, "side", tm.SIDE_STEPS, 1e-3, Path(tempfile.mkdtemp()))
        cut = tm.caption_agreement(model, side, cut="positions")
        print(f"| side | captioner, {tm.SIDE_STEPS} steps | {name} | {tm.caption_agreement(model, side):.3f} | "
              f"{cut:.3f} |", flush=True)
    held_out = tm.task("attack", 200, 2)
    for inputs in ("xy_team_role_ball", "xy"):
        seed_everything(0)
        model = build_spotter("star", tm.config(sss_inputs=inputs, use_global=False), tm.D, tm.N_CLASSES)
        tm.train(model, spotting_loss, "attack", tm.ATTACK_STEPS, 1e-3, Path(tempfile.mkdtemp()), inputs != "xy")
        attack = tm.Samples("attack", held_out, attributes=inputs != "xy")
        print(f"| attack | spotter, {tm.ATTACK_STEPS} steps | SSS inputs {inputs} | "
              f"{tm.recall_agreement(model, attack):.3f} | {tm.recall_agreement(model, attack, cut='positions'):.3f} |",
              flush=True)
    recall = tm.Samples("recall", tm.task("recall", 200, 2))
    spotters = {}
    for use_global in (True, False):
        seed_everything(0)
        model = build_spotter("star", tm.config(use_global=use_global, use_positions=False), tm.D, tm.N_CLASSES)
        tm.train(model, spotting_loss, "recall", tm.RECALL_STEPS, 1e-3, Path(tempfile.mkdtemp()))
        spotters[use_global] = model
        print(f"| recall | spotter, {tm.RECALL_STEPS} steps | {'global' if use_global else 'no global'} | "
              f"{tm.recall_agreement(model, recall):.3f} | {tm.recall_agreement(model, recall, cut='global'):.3f} |",
              flush=True)
    recall = tm.Samples("recall", tm.task("recall", 200, 2), tm.TOKENIZER)
    seed_everything(0)
    model = build_captioner("star", tm.config(use_positions=False), tm.D, tm.TOKENIZER)
    model.context.load_state_dict(spotters[True].context.state_dict())
    tm.train(model, captioning_loss, "recall", tm.CAPTIONER_RECALL_STEPS, 3e-3, Path(tempfile.mkdtemp()))
    print(f"| recall | captioner, {tm.CAPTIONER_RECALL_STEPS} steps, capturer from the spotter | global | "
          f"{tm.caption_agreement(model, recall):.3f} | {tm.caption_agreement(model, recall, cut='global'):.3f} |",
          flush=True)
    for use_global in (True, False):
        seed_everything(0)
        model = build_captioner("star", tm.config(use_global=use_global, use_positions=False), tm.D, tm.TOKENIZER)
        tm.train(model, captioning_loss, "recall", args.captioner_recall_steps, 3e-3, Path(tempfile.mkdtemp()))
        cut = tm.caption_agreement(model, recall, cut="global") if use_global else float("nan")
        print(f"| recall | captioner from scratch, {args.captioner_recall_steps} steps | "
              f"{'global' if use_global else 'no global'} | {tm.caption_agreement(model, recall):.3f} | {cut:.3f} |",
              flush=True)


if __name__ == "__main__":
    main()
