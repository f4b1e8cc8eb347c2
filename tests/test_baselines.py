"""The baselines SDVC and Delta: NetVLAD, the word vocabulary, shapes, masks, training and generation."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from star.data.batch import Batch
from star.errors import InputError
from star.models.decoder import DecoderConfig
from star.models.delta import DeltaConfig, DeltaSpotter, QueryDecoder
from star.models.delta_captioner import DeltaCaptioner
from star.models.netvlad import NetVLAD
from star.data.soccernet import SPOTTING_CLASSES as N_CLASSES
from star.models.sdvc import SDVCCaptioner, SDVCConfig, SDVCSpotter
from star.models.tokenizer import train_bpe
from star.models.vocab import WordVocab, join_words, split_words

CAPTIONS = [
    "[PLAYER] ([TEAM]) scores from the penalty spot. [TEAM] lead 1-0.",
    "[PLAYER] ([TEAM]) is shown a yellow card for a late tackle on [PLAYER].",
    "[COACH] makes a change: [PLAYER]'s afternoon is over and [PLAYER] comes on.",
]
DIM, WINDOW = 16, 12
SDVC_SMALL = replace(SDVCConfig.tiny(), feature_proj=16, vlad_clusters=4, lstm_hidden=64, word_emb=32, dropout=0.0)
DELTA_SMALL = replace(DeltaConfig.tiny(), width=32, heads=2, feedforward=64, dropout=0.0,
                      decoder=DecoderConfig(n_layer=1, n_embd=64, n_head=2, dropout=0.0))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_batch(size: int, tokenizer=None, seed: int = 0) -> Batch:
    """`size` windows (sample 1 padded after WINDOW - 4 samples), each with caption i % len(CAPTIONS)."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.ones(size, WINDOW, dtype=torch.bool)
    mask[1 % size, WINDOW - 4:] = False
    batch = Batch(
        local=torch.randn(size, WINDOW, DIM, generator=generator) * mask[..., None], local_mask=mask,
        global_=torch.zeros(size, 1, DIM), global_mask=torch.zeros(size, 1, dtype=torch.bool),
        positions=torch.zeros(size, WINDOW, 1, 2), positions_mask=torch.zeros(size, WINDOW, 1, dtype=torch.bool),
        anchor=torch.full((size,), WINDOW // 2), label=torch.arange(size) % N_CLASSES)
    if tokenizer is not None:
        batch.tokens, batch.token_mask = tokenizer.encode_batch([CAPTIONS[i % len(CAPTIONS)] for i in range(size)], 64)
    return batch


def with_noise_on_padding(batch: Batch) -> Batch:
    noise = torch.randn_like(batch.local) * 100 * ~batch.local_mask[..., None]
    return replace(batch, local=batch.local + noise)


# --- NetVLAD ---------------------------------------------------------------------------------------------------

def test_netvlad_assignments_sum_to_one_on_real_frames_and_zero_on_padding():
    torch.manual_seed(0)
    vlad = NetVLAD(DIM, clusters=5)
    batch = make_batch(3)
    weights = vlad.assignments(batch.local, batch.local_mask)
    assert weights.shape == (3, WINDOW, 5)
    torch.testing.assert_close(weights.sum(dim=-1), batch.local_mask.float())
    pooled = vlad(batch.local, batch.local_mask)
    assert pooled.shape == (3, 5 * DIM)
    torch.testing.assert_close(pooled.norm(dim=-1), torch.ones(3))


def test_netvlad_ignores_padding_and_a_fully_padded_window_gives_zeros():
    torch.manual_seed(0)
    vlad = NetVLAD(DIM, clusters=5)
    batch = make_batch(3)
    torch.testing.assert_close(vlad(batch.local, batch.local_mask), vlad(with_noise_on_padding(batch).local,
                                                                          batch.local_mask))
    empty = vlad(batch.local, torch.zeros_like(batch.local_mask))
    assert torch.isfinite(empty).all() and (empty == 0).all()


def test_netvlad_is_invariant_to_frame_scale():
    torch.manual_seed(0)
    vlad = NetVLAD(DIM, clusters=5)
    batch = make_batch(2)
    torch.testing.assert_close(vlad(batch.local, batch.local_mask), vlad(batch.local * 7.5, batch.local_mask))


# --- word vocabulary -------------------------------------------------------------------------------------------

def test_words_split_and_join_round_trip():
    for caption in CAPTIONS:
        assert join_words(split_words(caption)) == caption
    assert split_words("[PLAYER]'s shot, 4-4.") == ["[PLAYER]", "'s", "shot", ",", "4-4", "."]


def test_vocab_keeps_frequent_words_and_maps_the_rest_to_unknown(tmp_path):
    vocab = WordVocab.build(CAPTIONS, min_freq=2)
    assert "[PLAYER]" in vocab.index and "(" in vocab.index and "penalty" not in vocab.index
    assert vocab.words[:4] == ["<pad>", "<bos>", "<end>", "<unk>"]
    assert vocab.words[4] == "[PLAYER]"  # most frequent first
    ids = vocab.encode("[PLAYER] misses a penalty.")
    assert ids == [vocab.index["[PLAYER]"], vocab.unk_id, vocab.index["a"], vocab.unk_id, vocab.index["."]]
    assert vocab.decode(ids + [vocab.end_id, vocab.index["a"]]) == "[PLAYER] <unk> a <unk>."  # stops at the end
    assert WordVocab.build(CAPTIONS, min_freq=1).decode(WordVocab.build(CAPTIONS, 1).encode(CAPTIONS[2])) == CAPTIONS[2]

    vocab.save(tmp_path)
    assert WordVocab.load(tmp_path).words == vocab.words
    with pytest.raises(InputError, match="vocab.json"):
        WordVocab.load(tmp_path / "missing")


def test_vocab_encode_batch_appends_end_pads_and_masks():
    vocab = WordVocab.build(CAPTIONS, min_freq=1)
    tokens, mask = vocab.encode_batch(["[PLAYER] scores.", CAPTIONS[0]], max_tokens=5)
    assert tokens.shape == mask.shape == (2, 5)
    assert tokens[0].tolist() == [*vocab.encode("[PLAYER] scores."), vocab.end_id, vocab.pad_id]
    assert mask[0].tolist() == [True] * 4 + [False] and mask[1].all()
    assert tokens[1, -1] == vocab.end_id  # cut to max_tokens - 1 words, then the end


# --- spotters --------------------------------------------------------------------------------------------------

SPOTTERS = {"sdvc": lambda: SDVCSpotter(SDVC_SMALL, DIM, N_CLASSES),
            "delta": lambda: DeltaSpotter(DELTA_SMALL, DIM, N_CLASSES)}


@pytest.mark.parametrize("method", SPOTTERS)
def test_spotter_logits_ignore_padded_window_positions(method):
    torch.manual_seed(0)
    model = SPOTTERS[method]().eval()
    batch = make_batch(4)
    logits = model(batch)
    assert logits.shape == (4, N_CLASSES) and torch.isfinite(logits).all()
    torch.testing.assert_close(model(with_noise_on_padding(batch)), logits)
    changed = replace(batch, local=batch.local.clone())
    changed.local[:, 0] += 3.0
    assert not torch.allclose(model(changed), logits)


def test_sdvc_descriptor_batch_norm_trains_on_a_batch_of_one():
    torch.manual_seed(0)
    model = SDVCSpotter(SDVC_SMALL, DIM, N_CLASSES)  # training mode: a batch of one has no batch variance
    assert SDVC_SMALL.batch_norm and torch.isfinite(model(make_batch(1))).all()


@pytest.mark.parametrize("method", SPOTTERS)
def test_spotter_training_lowers_the_loss(method):
    torch.manual_seed(0)
    model = SPOTTERS[method]()
    batch = make_batch(8)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(batch), batch.label)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


# --- captioners ------------------------------------------------------------------------------------------------

def sdvc_captioner():
    vocab = WordVocab.build(CAPTIONS, min_freq=1)
    return SDVCCaptioner(SDVC_SMALL, DIM, vocab), vocab


def delta_captioner():
    tokenizer = train_bpe(CAPTIONS * 4, vocab_size=300)
    return DeltaCaptioner(DELTA_SMALL, DIM, tokenizer), tokenizer


CAPTIONERS = {"sdvc": sdvc_captioner, "delta": delta_captioner}


@pytest.mark.parametrize("method", CAPTIONERS)
def test_captioner_loss_ignores_padded_window_positions(method):
    torch.manual_seed(0)
    model, tokenizer = CAPTIONERS[method]()
    model.eval()
    batch = make_batch(3, tokenizer)
    loss = model(batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    torch.testing.assert_close(model(with_noise_on_padding(batch)), loss)


@pytest.mark.parametrize("method", CAPTIONERS)
def test_captioner_overfits_three_captions_and_generates_them(method):
    torch.manual_seed(0)
    model, tokenizer = CAPTIONERS[method]()
    batch = make_batch(3, tokenizer)
    lr, steps = (1e-2, 60) if method == "sdvc" else (3e-3, 100)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    first = model(batch).item()
    for _ in range(steps):
        loss = model(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05 * first
    model.eval()
    assert model.generate(batch, beam_size=3, max_tokens=40) == CAPTIONS


def test_sdvc_generation_stops_at_max_tokens():
    torch.manual_seed(0)
    model, vocab = sdvc_captioner()
    model.eval()
    captions = model.generate(make_batch(2), max_tokens=5)
    assert len(captions) == 2 and all(isinstance(c, str) for c in captions)
    assert all(len(split_words(c)) <= 5 for c in captions)


# --- the paper presets -----------------------------------------------------------------------------------------

def test_sdvc_paper_preset_trains_at_batch_one():
    torch.manual_seed(0)
    cfg = SDVCConfig.paper()
    assert (cfg.vlad_clusters, cfg.lstm_layers, cfg.lstm_hidden, cfg.word_emb, cfg.captioning_window_s) == (
        64, 4, 512, 256, 45)
    vocab = WordVocab.build(CAPTIONS, min_freq=1)
    model = SDVCCaptioner(cfg, DIM, vocab)
    batch = make_batch(1, vocab)
    model(batch).backward()
    assert model.encode.project.weight.grad.abs().sum() > 0
    assert SDVCSpotter(cfg, DIM, N_CLASSES).eval()(batch).shape == (1, N_CLASSES)


def test_delta_paper_query_decoder_gives_eight_prefix_tokens():
    cfg = DeltaConfig.paper()
    assert (cfg.queries, cfg.layers, cfg.captioning_window_s) == (8, 4, 30)
    assert QueryDecoder(cfg, DIM)(make_batch(1).local, make_batch(1).local_mask).shape == (1, 8, cfg.width)
