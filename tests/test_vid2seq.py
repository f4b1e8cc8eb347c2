"""Vid2Seq: time tokens, the output sequence and its strict parsing, training on two clips, T5 from a directory."""

from __future__ import annotations


import pytest
import torch

from star.models.dense import ClipEvents, DenseBatch
from star.models.tokenizer import train_bpe
from star.models.vid2seq import T5DirectoryError, Vid2Seq, Vid2SeqConfig, load_t5
from star.models.vid2seq_tokens import TimeTokens, event_sequence, parse_sequence

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CAPTIONS = ["[PLAYER] ([TEAM]) scores a fine goal.", "Corner kick for [TEAM].", "Yellow card for [PLAYER].",
            "The referee blows the whistle."]


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe(CAPTIONS * 5, vocab_size=300)


def test_time_tokens_round_trip_within_one_bin():
    times = TimeTokens(offset=500, bins=100)
    duration = 60.0
    for t in [0.0, 0.3, 12.5, 29.99, 45.0, 59.4, 60.0]:
        token = times.encode(t, duration)
        assert times.is_time(token)
        back = times.decode(token, duration)
        assert back <= t + 1e-9 and t - back < duration / (times.bins - 1)
    assert times.encode(0.0, duration) == 500 and times.encode(60.0, duration) == 599
    assert times.encode(75.0, duration) == 599 and times.encode(-3.0, duration) == 500  # clamped to the clip
    for token in range(500, 600):  # every bin maps back to itself
        assert times.encode(times.decode(token, duration), duration) == token
    with pytest.raises(ValueError):
        times.decode(499, duration)


def test_sequence_round_trip_sorted_and_cut_at_whole_events():
    times = TimeTokens(offset=10, bins=11)
    events = [(30.0, 40.0, [5, 6]), (0.0, 10.0, [3]), (50.0, 50.0, [4, 4, 4])]
    ids = event_sequence(events, 100.0, times, end_id=1, max_tokens=64)
    assert ids == [10, 11, 3, 13, 14, 5, 6, 15, 15, 4, 4, 4, 1]
    parsed = parse_sequence(ids, 100.0, times, end_id=1, pad_id=0)
    assert parsed.dropped == 0
    assert [(e.start, e.end, e.text_ids) for e in parsed.events] == [
        (0.0, 10.0, (3,)), (30.0, 40.0, (5, 6)), (50.0, 50.0, (4, 4, 4))]
    # a limit that cuts the third event leaves it out whole
    assert event_sequence(events, 100.0, times, end_id=1, max_tokens=10) == [10, 11, 3, 13, 14, 5, 6, 1]


@pytest.mark.parametrize("ids, kept, dropped", [
    ([3, 4, 10, 11, 5, 1], 1, 1),          # text before any time token
    ([10, 5, 12, 13, 6, 1], 1, 1),         # one time token only
    ([10, 11, 12, 5, 13, 14, 6, 1], 1, 1),  # three time tokens
    ([14, 12, 5, 1], 0, 1),                # start after end
    ([10, 11, 13, 14, 6, 1], 0, 1),        # four time tokens in a row (an event without caption)
    ([10, 11, 5, 12, 13], 1, 1),           # no end token: the last event may be cut short
    ([10, 11, 5, 1, 12, 13, 6], 1, 0),     # after the end token nothing counts
    ([10, 11, 0, 5, 1, 0, 0], 1, 0),       # pads are ignored
    ([1], 0, 0),
])
def test_parse_drops_and_counts_malformed_fragments(ids, kept, dropped):
    parsed = parse_sequence(ids, 100.0, TimeTokens(offset=10, bins=11), end_id=1, pad_id=0)
    assert (len(parsed.events), parsed.dropped) == (kept, dropped)


def test_parse_drops_blank_captions():
    times = TimeTokens(offset=10, bins=11)
    parsed = parse_sequence([10, 11, 5, 12, 13, 6, 1], 100.0, times, 1, 0,
                            decode_text=lambda t: " " if t == [6] else "x")
    assert len(parsed.events) == 1 and parsed.dropped == 1


def _batch(tokenizer, features, events):
    """A DenseBatch: features [B, T, D], mask, per clip its events' segments (samples) and caption tokens."""
    clips = []
    for clip in events:
        start, end = (torch.tensor([e[k] for e in clip], dtype=torch.float32) for k in (0, 1))
        tokens, token_mask = tokenizer.encode_batch([e[2] for e in clip], 64)
        clips.append(ClipEvents((start + end) / 2, start, end, torch.zeros(len(clip), dtype=torch.long), tokens,
                                token_mask))
    return DenseBatch(features, torch.ones(features.shape[:2], dtype=torch.bool), clips)


def test_tiny_model_overfits_two_clips(tokenizer):
    torch.manual_seed(0)
    cfg = Vid2SeqConfig.tiny()
    cfg.max_tokens, cfg.num_bins = 48, 20
    features = torch.randn(2, 20, 16)
    events = [[(2.0, 4.0, CAPTIONS[0]), (12.0, 14.0, CAPTIONS[1])], [(8.0, 10.0, CAPTIONS[2])]]
    batch = _batch(tokenizer, features, events)
    model = Vid2Seq(cfg, feature_dim=16, tokenizer=tokenizer)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = model(batch)
        first = first if first is not None else loss.item()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.3 * first
    model.eval()
    quantized = lambda t: model.times.decode(model.times.encode(t, 20), 20)  # a bin's left edge
    for clip, want in zip(features, events, strict=True):
        predicted = model.predict(clip, fps=2.0)
        assert [e.caption for e in predicted] == [c for *_, c in want]
        assert [t for e in predicted for t in (e.start_s, e.end_s)] == pytest.approx(
            [quantized(t) / 2 for s, e, _ in want for t in (s, e)])
        assert all(e.centre_s == (e.start_s + e.end_s) / 2 and 0.5 < e.confidence <= 1 and e.label is None
                   for e in predicted)
    assert model.parsing == {"events": 3, "dropped": 0, "fallback": 0}


def test_untrained_model_still_predicts_one_well_formed_event_per_clip(tokenizer):
    torch.manual_seed(0)
    cfg = Vid2SeqConfig.tiny()
    cfg.max_tokens = 24
    model = Vid2Seq(cfg, feature_dim=8, tokenizer=tokenizer).eval()
    for seed in range(3):
        clip = torch.randn(10, 8, generator=torch.Generator().manual_seed(seed))
        events = model.predict(clip, fps=1.0)
        assert events and all(0 <= e.start_s <= e.end_s <= 10 and e.caption and 0 < e.confidence <= 1
                              for e in events)


def test_checkpoint_round_trip_safetensors(tokenizer, tmp_path):
    from safetensors.torch import load_model, save_model

    torch.manual_seed(0)
    model = Vid2Seq(Vid2SeqConfig.tiny(), feature_dim=8, tokenizer=tokenizer).eval()
    save_model(model, tmp_path / "model.safetensors")   # T5's tied embeddings stored once
    torch.manual_seed(1)
    again = Vid2Seq(Vid2SeqConfig.tiny(), feature_dim=8, tokenizer=tokenizer).eval()
    missing, unexpected = load_model(again, tmp_path / "model.safetensors")
    assert not missing and not unexpected
    for name, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name
    clip = torch.randn(12, 8)
    assert model.generate(clip[None], torch.ones(1, 12, dtype=torch.bool)) == \
        again.generate(clip[None], torch.ones(1, 12, dtype=torch.bool))


def _save_tiny_t5(directory, vocab_size):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                      num_heads=4, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    model = T5ForConditionalGeneration(config)
    model.save_pretrained(directory)
    return model


def test_paper_loads_t5_from_a_local_directory(tokenizer, tmp_path):
    saved = _save_tiny_t5(tmp_path / "t5", tokenizer.vocab_size)
    t5 = load_t5(tmp_path / "t5")
    assert len(t5.encoder.block) == 0 and len(t5.decoder.block) == 2  # no text encoder: nothing to read
    assert torch.equal(t5.decoder.block[1].layer[0].SelfAttention.q.weight,
                       saved.decoder.block[1].layer[0].SelfAttention.q.weight)
    cfg = Vid2SeqConfig.paper()
    cfg.pretrained, cfg.temporal_layers, cfg.temporal_heads, cfg.num_bins = str(tmp_path / "t5"), 1, 4, 10
    model = Vid2Seq(cfg, feature_dim=8, tokenizer=tokenizer)
    assert model.cfg.d_model == 32 and model.t5.get_input_embeddings().num_embeddings == tokenizer.vocab_size + 10
    assert torch.equal(model.t5.shared.weight[: tokenizer.vocab_size], saved.shared.weight)
    batch = _batch(tokenizer, torch.randn(1, 6, 8), [[(1.0, 2.0, CAPTIONS[3])]])
    assert torch.isfinite(model(batch))


def test_missing_t5_directory_is_one_line(tmp_path, tokenizer):
    cfg = Vid2SeqConfig.paper()
    cfg.pretrained = str(tmp_path / "nowhere")
    with pytest.raises(T5DirectoryError, match="nowhere") as err:
        Vid2Seq(cfg, feature_dim=8, tokenizer=tokenizer)
    assert "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(T5DirectoryError, match="config.json is missing"):
        load_t5(tmp_path / "empty")


def _save_t5_tokenizer(directory, words=("corner", "kick")):
    """A T5-style tokenizer.json (<pad> 0, </s> 1, <unk> 2, then `words`): how a T5 directory ships its own."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: 3 + i for i, w in enumerate(words)}}
    bpe = HFTokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    bpe.add_special_tokens(["<pad>", "</s>"])
    directory.mkdir(parents=True, exist_ok=True)
    bpe.save(str(directory / "tokenizer.json"))
    return len(vocab)


def test_t5_tokenizer_from_a_local_directory(tmp_path):
    from star.models.tokenizer import Tokenizer, TokenizerError, make_tokenizer

    _save_t5_tokenizer(tmp_path / "t5")
    tok = make_tokenizer("t5", model_dir=tmp_path / "t5")
    assert (tok.pad_id, tok.end_id, tok.kind) == (0, 1, "t5")
    assert tok.encode("corner kick") == [3, 4]
    tok.save(tmp_path / "saved")
    assert Tokenizer.load(tmp_path / "saved").encode("kick corner") == [4, 3]
    with pytest.raises(TokenizerError, match="tokenizer.json"):
        make_tokenizer("t5", model_dir=tmp_path)


FAST = {"steps": 4, "batch_size": 2, "eval_every": 2, "warmup_steps": 1}


def _train(store, out, model=None):
    import json

    from star.cli import main

    cfg = json.dumps({"captioning": {"dense": {"train": FAST}, "max_tokens": 12},
                      "model": {"preset": "tiny", **(model or {})}})
    assert main(["captioning-train", "--method", "vid2seq", "--manifest", str(store["manifest"]),
                 "--labels-root", str(store["labels_root"]), "--features", str(store["features"]), "--config", cfg,
                 "--out", str(out / "model.safetensors"), "--report", str(out / "train.json")]) == 0
    return cfg


def test_trains_and_infers_through_the_dense_stages(tmp_path):
    """`star captioning-train` writes a Vid2Seq model that loads back the same; `star captioning-infer` writes the
    official predictions of every half from its own events."""
    from star.cli import main
    from star.data.predictions import load_predictions
    from star.model_file import load_model
    from tests.caches import write_store

    store = write_store(tmp_path / "store")
    cfg = _train(store, tmp_path / "models")
    model, content = load_model(tmp_path / "models" / "model.safetensors", "captioning")
    again, _ = load_model(tmp_path / "models" / "model.safetensors", "captioning")
    assert isinstance(model, Vid2Seq) and model.tokenizer.kind == "bpe" and content["method"] == "vid2seq"
    for name, value in model.state_dict().items():  # T5's tied embeddings stored once, restored shared
        assert torch.equal(value, again.state_dict()[name]), name
    assert model.t5.lm_head.weight.data_ptr() == model.t5.shared.weight.data_ptr()
    test = store["games"][2]
    out = tmp_path / "pred" / "results_dense_captioning.json"
    assert main(["captioning-infer", "--model", str(tmp_path / "models" / "model.safetensors"), "--game-path",
                 test.path, "--features", *[str(store["features"] / test.id / f"{h}.h5") for h in (1, 2)],
                 "--out", str(out), "--config", cfg]) == 0
    predictions, outside = load_predictions(out)
    assert not outside and all(predictions[h] for h in (1, 2))
    assert all(0 <= c.seconds < 60 and c.label == "comments" for h in (1, 2) for c in predictions[h])


def test_t5_dir_loads_t5_and_its_tokenizer_through_the_stage(tmp_path):
    from star.model_file import load_model
    from tests.caches import write_store

    vocab = _save_t5_tokenizer(tmp_path / "t5", words=("goal", "corner", "card"))
    saved = _save_tiny_t5(tmp_path / "t5", vocab)
    store = write_store(tmp_path / "store")
    _train(store, tmp_path / "models", {"t5_dir": str(tmp_path / "t5")})
    model, content = load_model(tmp_path / "models" / "model.safetensors", "captioning")
    assert content["config"]["pretrained"] == str(tmp_path / "t5") and model.tokenizer.kind == "t5"
    assert model.cfg.d_model == 32 and model.times.offset == vocab
    assert model.t5.shared.weight.shape == (vocab + model.cfg.num_bins, 32)
    assert not torch.equal(model.t5.decoder.block[0].layer[0].SelfAttention.q.weight,
                           saved.decoder.block[0].layer[0].SelfAttention.q.weight)  # trained from T5's weights
