"""The training loop's live log (CSV per step), gradient accumulation and bf16 autocast, on CPU."""

import csv

import pytest
import torch
from torch import nn

from star.data.datasets import Collate, SpottingDataset
from star.data.halves import Inputs
from star.train.log import COLUMNS, read_log
from star.train.loop import fit, micro_batches, seed_everything, spotting_loss
from tests.caches import write_store
from tests.test_train import TRAIN, halves


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("store"), positions_fps=2.0)


class PlainSpotter(nn.Module):
    """Mean of the window -> MLP -> logits, no dropout: the same samples give the same gradient however batched."""

    def __init__(self, dim=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 32), nn.ReLU(), nn.Linear(32, 14))
        self.dtypes = set()

    def forward(self, batch):
        pooled = (batch.local * batch.local_mask[..., None]).sum(1) / batch.local_mask.sum(1, keepdim=True)
        out = self.net(pooled)
        self.dtypes.add(out.dtype)
        return out


def train(store, tmp_path, name, after_step=None, **overrides):
    seed_everything(0)
    model = PlainSpotter()
    inputs = Inputs(window=6, with_global=False)
    data = SpottingDataset(halves(store), inputs, 1, 1)
    valid = SpottingDataset(halves(store, "valid"), inputs, 1, 1)
    curve = fit(model, spotting_loss, data, valid, Collate(), {**TRAIN, **overrides}, seed=0,
                checkpoint=tmp_path / f"{name}.ckpt", fingerprint="a", device=torch.device("cpu"),
                after_step=after_step, log_path=tmp_path / f"{name}.csv")
    return model, curve


def test_micro_batches_split_each_step_in_order():
    steps = iter([[0, 1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13, 14, 15]])
    assert list(micro_batches(steps, 3)) == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9, 10], [11, 12, 13], [14, 15]]


def test_the_log_is_written_while_training(store, tmp_path):
    seen = []

    def peek(step):  # the file already holds this step's row when the step ends
        with (tmp_path / "run.csv").open() as f:
            seen.append(len(list(csv.DictReader(f))))

    _, curve = train(store, tmp_path, "run", after_step=peek)
    assert seen == list(range(1, TRAIN["steps"] + 1))
    log = read_log(tmp_path / "run.csv")
    assert list(log) == COLUMNS and log["step"] == list(range(1, TRAIN["steps"] + 1))
    logged_valid = {int(s): v for s, v in zip(log["step"], log["valid_loss"], strict=True) if v == v}
    assert logged_valid == pytest.approx({p["step"]: p["valid_loss"] for p in curve["curve"]}, rel=1e-5)
    assert set(logged_valid) == {4, 8, 12}
    # warmup over 2 steps at lr 0.01: the first step runs at half the peak, the second at the peak
    assert log["lr"][:2] == pytest.approx([0.005, 0.01])
    assert all(g > 0 for g in log["grad_norm"]) and all(s > 0 for s in log["samples_per_s"])


def test_a_resumed_run_keeps_one_row_per_step(store, tmp_path):
    def kill_at_6(step):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(store, tmp_path, "resumed", after_step=kill_at_6)
    assert read_log(tmp_path / "resumed.csv")["step"] == [1, 2, 3, 4, 5, 6]
    train(store, tmp_path, "resumed")   # resumes from the checkpoint of step 4
    assert read_log(tmp_path / "resumed.csv")["step"] == list(range(1, TRAIN["steps"] + 1))


def test_accumulated_micro_batches_equal_the_whole_batch(store, tmp_path):
    whole, whole_curve = train(store, tmp_path, "whole")
    accumulated, acc_curve = train(store, tmp_path, "acc", accumulate=4)   # 4 micro-batches of 2
    for a, b in zip(whole.state_dict().values(), accumulated.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert [p["valid_loss"] for p in acc_curve["curve"]] == pytest.approx(
        [p["valid_loss"] for p in whole_curve["curve"]], rel=1e-5)
    # and the logged loss is the whole batch's
    assert read_log(tmp_path / "acc.csv")["train_loss"] == pytest.approx(read_log(tmp_path / "whole.csv")["train_loss"],
                                                                         rel=1e-4)


def test_bf16_autocast_runs_on_the_cpu(store, tmp_path):
    model, curve = train(store, tmp_path, "bf16", precision="bf16")
    assert torch.bfloat16 in model.dtypes                        # the forward passes ran under autocast
    assert all(p.dtype == torch.float32 for p in model.parameters())   # the weights stay float32
    assert all(v == v and v < 10 for v in (p["valid_loss"] for p in curve["curve"]))
    fp32, _ = train(store, tmp_path, "fp32", precision="auto")   # auto is float32 on the CPU
    assert fp32.dtypes == {torch.float32}
