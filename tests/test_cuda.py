"""The CUDA path (skipped where torch sees no GPU, so CI never runs it; run on a GPU machine with
`python -m pytest tests/test_cuda.py`): the pure-PyTorch hash grid, STaR's captioner and the training stages give
on CUDA what they give on the CPU, and a model trained on a GPU captions on a CPU."""

import json

import pytest
import torch

from star.cli import main
from star.data.predictions import load_predictions
from star.models import build_captioner, model_config
from star.models.hashgrid import HashGridEncoding
from star.models.tokenizer import train_bpe
from star.model_file import load_model
from tests.caches import write_store
from tests.test_star_model import CAPTIONS, make_batch, tiny_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_hash_grid_on_cuda_equals_the_cpu():
    torch.manual_seed(0)
    grid = HashGridEncoding(n_levels=16, log2_table=14, backend="torch")
    points = torch.rand(4096, 2)
    expected = grid(points)
    # 'torch' backend on CUDA: the same indices and weights, so the same numbers up to float rounding
    torch.testing.assert_close(grid.cuda()(points.cuda()).cpu(), expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("preset", ["tiny", "paper"])
def test_star_captioner_loss_gradients_and_beams_match_the_cpu(preset):
    tokenizer = train_bpe(CAPTIONS * 20, vocab_size=300)
    cfg = tiny_config() if preset == "tiny" else model_config("star", "paper")
    torch.manual_seed(0)
    model = build_captioner("star", cfg, 16, tokenizer).eval()  # eval: no dropout, so both devices agree
    batch = make_batch(b=1, tokenizer=tokenizer)
    cpu_loss = model(batch)
    cpu_loss.backward()
    cpu_grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    cpu_text = model.generate(batch, beam_size=2, max_tokens=6)
    model.zero_grad()

    model.cuda()
    cuda_loss = model(batch.to(torch.device("cuda")))
    cuda_loss.backward()
    torch.testing.assert_close(cuda_loss.cpu(), cpu_loss, atol=1e-4, rtol=1e-4)
    cuda_grads = [p.grad.cpu() for p in model.parameters() if p.grad is not None]
    assert len(cuda_grads) == len(cpu_grads)
    for cuda, cpu in zip(cuda_grads, cpu_grads, strict=True):
        torch.testing.assert_close(cuda, cpu, atol=1e-3, rtol=1e-2)
    assert model.generate(batch.to(torch.device("cuda")), beam_size=2, max_tokens=6) == cpu_text


@pytest.mark.parametrize("method", ["sdvc", "delta", "star"])
def test_trained_on_cuda_captions_on_the_cpu(method, tmp_path):
    store = write_store(tmp_path)
    fast = {"steps": 4, "batch_size": 8, "eval_every": 2, "checkpoint_every": 2, "warmup_steps": 1}
    cfg = {"spotting": {"train": fast}, "captioning": {"train": fast, "beam_size": 2, "max_tokens": 8},
           "model": {"device": "cuda"}}
    data = ["--method", method, "--manifest", str(store["manifest"]), "--labels-root", str(store["labels_root"]),
            "--features", str(store["features"])]
    if method == "star":
        data += ["--positions", str(store["positions"])]
    model = tmp_path / "captioning.safetensors"
    assert main(["captioning-train", *data, "--config", json.dumps(cfg), "--out", str(model)]) == 0
    assert load_model(model, "captioning")[1]["method"] == method   # on a machine that may have no GPU

    test = store["games"][2]
    features = [str(store["features"] / test.id / f"{h}.h5") for h in (1, 2)]
    positions = ["--positions", *[str(store["positions"] / test.id / f"{h}.h5") for h in (1, 2)]] \
        if method == "star" else []
    out = tmp_path / "predictions.json"
    cfg["model"]["device"] = "cpu"
    assert main(["captioning-infer", "--model", str(model), "--game-path", test.path, "--features", *features,
                 *positions, "--labels", str(store["labels_root"] / test.path / "Labels-caption.json"),
                 "--out", str(out), "--config", json.dumps(cfg)]) == 0
    halves, _ = load_predictions(out)
    assert halves[1] and halves[2]
