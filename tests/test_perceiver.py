"""Perceiver attention and resampler: masks, fully padded samples, time embeddings."""

import torch

from star.models.perceiver import PerceiverAttention, PerceiverResampler, sinusoidal_embedding


def test_padding_does_not_change_the_output():
    torch.manual_seed(0)
    resampler = PerceiverResampler(dim=32, depth=2, dim_head=8, heads=4).eval()
    latents = torch.randn(1, 4, 32)
    media = torch.randn(1, 10, 32)
    short = resampler(media[:, :6], latents)
    # the same 6 tokens followed by 4 padded ones holding garbage (even NaN) give the same latents
    padded = media.clone()
    padded[:, 6:] = float("nan")
    mask = torch.arange(10)[None] < 6
    torch.testing.assert_close(resampler(padded, latents, mask), short)


def test_fully_padded_sample_gives_finite_outputs_and_gradients():
    torch.manual_seed(0)
    resampler = PerceiverResampler(dim=16, depth=1, dim_head=8, heads=2)
    media = torch.randn(2, 5, 16, requires_grad=True)
    latents = torch.randn(2, 3, 16, requires_grad=True)
    mask = torch.tensor([[True, True, False, False, False], [False] * 5])
    out = resampler(media, latents, mask)
    assert out.shape == (2, 3, 16) and torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(latents.grad).all() and torch.isfinite(media.grad).all()
    assert media.grad[1].abs().sum() == 0 and media.grad[0, 2:].abs().sum() == 0  # padding gets no gradient
    # a fully padded sample sees only its latents: its output does not depend on the media at all
    other = resampler(torch.randn(2, 5, 16), latents, mask)
    torch.testing.assert_close(other[1], out[1])


def test_attention_reads_the_media():
    torch.manual_seed(0)
    attend = PerceiverAttention(dim=16, dim_head=8, heads=2)
    latents = torch.randn(1, 2, 16)
    a, b = attend(torch.randn(1, 4, 16), latents), attend(torch.randn(1, 4, 16), latents)
    assert a.shape == (1, 2, 16) and not torch.allclose(a, b)


def test_time_embedding_tells_positions_apart():
    emb = sinusoidal_embedding(torch.tensor([-3, 0, 1, 2700]), 33)
    assert emb.shape == (4, 33) and torch.isfinite(emb).all()
    assert torch.cdist(emb, emb).fill_diagonal_(1).min() > 0.1
    torch.manual_seed(0)
    resampler = PerceiverResampler(dim=16, depth=1, dim_head=8, heads=2).eval()
    media, latents = torch.randn(1, 5, 16), torch.randn(1, 3, 16)
    shifted = resampler(media, latents, times=torch.arange(5)[None] + 100)
    assert not torch.allclose(resampler(media, latents), shifted)
