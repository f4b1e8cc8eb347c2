"""pycocoevalcap's BLEU 1-4 ("closest" reference length), ROUGE-L and CIDEr-D, from per-text caches.

The official evaluator scores every half with pycocoevalcap's classes, which count each caption's n-grams again
for every pair it is in, find LCS lengths with a Python double loop and do CIDEr's arithmetic on numpy scalars:
most of its run time. `TextScorer` does the same arithmetic, in the same order, on n-gram counts kept per distinct
text, BLEU statistics and LCS lengths kept per distinct pair, and CIDEr vectors kept per text within a corpus.
`tests/test_evaluate.py` checks it against pycocoevalcap's classes.

A corpus is a list of (prediction, reference) pairs of PTB-tokenized text, one reference per prediction.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from pycocoevalcap.cider.cider_scorer import precook

NGRAMS = 4
ROUGE_BETA = 1.2     # pycocoevalcap's Rouge
CIDER_SIGMA = 6.0    # pycocoevalcap's Cider (CIDEr-D length penalty)
BLEU_SMALL, BLEU_TINY = 1e-9, 1e-15


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence of two token lists; bit-parallel (Crochemore et al. 2001): one
    big-int step per token of `b` instead of pycocoevalcap's len(a) x len(b) Python loop."""
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    row = full  # a 0 bit marks a position of `a` that ends a match on the current LCS frontier
    for token in b:
        matched = row & masks.get(token, 0)
        row = ((row + matched) | (row - matched)) & full
    return len(a) - row.bit_count()


class TextScorer:
    """BLEU 1-4, ROUGE-L and CIDEr-D of corpora of tokenized (prediction, reference) pairs."""

    def __init__(self):
        self._ngrams: dict[str, dict[tuple[str, ...], int]] = {}
        self._bleu: dict[tuple[str, str], tuple[int, int, tuple[int, ...]]] = {}
        self._rouge: dict[tuple[str, str], float] = {}
        self._log: dict[float, float] = {}

    def ngrams(self, text: str) -> dict[tuple[str, ...], int]:
        """1- to 4-gram counts, in pycocoevalcap's order (which fixes CIDEr's summation order)."""
        if text not in self._ngrams:
            self._ngrams[text] = precook(text, NGRAMS)
        return self._ngrams[text]

    # -- BLEU ----------------------------------------------------------------------------------------------------

    def bleu_stats(self, pair: tuple[str, str]) -> tuple[int, int, tuple[int, ...]]:
        """(prediction length, reference length, clipped matches per n-gram order) of one pair."""
        if pair not in self._bleu:
            hyp, ref = pair
            ref_counts = self.ngrams(ref)
            correct = [0] * NGRAMS
            for gram, count in self.ngrams(hyp).items():
                if gram in ref_counts:
                    correct[len(gram) - 1] += min(ref_counts[gram], count)
            self._bleu[pair] = (len(hyp.split()), len(ref.split()), tuple(correct))
        return self._bleu[pair]

    def bleu(self, corpus: list[tuple[str, str]]) -> list[float]:
        """Corpus BLEU 1-4 from summed statistics; one reference per pair, so "closest" is its length."""
        stats = [self.bleu_stats(p) for p in corpus]
        test_len = sum(s[0] for s in stats)
        ref_len = sum(s[1] for s in stats)
        correct = [sum(s[2][k] for s in stats) for k in range(NGRAMS)]
        guess = [sum(max(0, s[0] - k) for s in stats) for k in range(NGRAMS)]
        scores, product = [], 1.0
        for k in range(NGRAMS):
            product *= float(correct[k] + BLEU_TINY) / (guess[k] + BLEU_SMALL)
            scores.append(product ** (1.0 / (k + 1)))
        ratio = (test_len + BLEU_TINY) / (ref_len + BLEU_SMALL)
        if ratio < 1:
            scores = [s * math.exp(1 - 1 / ratio) for s in scores]
        return scores

    # -- ROUGE-L -------------------------------------------------------------------------------------------------

    def rouge_l_pair(self, pair: tuple[str, str]) -> float:
        if pair not in self._rouge:
            hyp, ref = (t.split(" ") for t in pair)  # split(" ") as pycocoevalcap: "" is one empty token
            lcs = lcs_length(ref, hyp)
            precision, recall = lcs / len(hyp), lcs / len(ref)
            if precision != 0 and recall != 0:
                score = (1 + ROUGE_BETA**2) * precision * recall / (recall + ROUGE_BETA**2 * precision)
            else:
                score = 0.0
            self._rouge[pair] = score
        return self._rouge[pair]

    def rouge_l(self, corpus: list[tuple[str, str]]) -> float:
        return float(np.mean(np.array([self.rouge_l_pair(p) for p in corpus])))

    # -- CIDEr-D -------------------------------------------------------------------------------------------------

    def _ln(self, x: float) -> float:
        if x not in self._log:
            self._log[x] = float(np.log(x))
        return self._log[x]

    def cider_d(self, corpus: list[tuple[str, str]]) -> float:
        """CIDEr-D with the corpus's own IDF: document frequencies count pairs whose reference holds the n-gram."""
        log_docs = self._ln(float(len(corpus)))
        doc_freq = Counter(gram for _, ref in corpus for gram in self.ngrams(ref))
        # idf per n-gram; one in no reference has document frequency max(1, 0) = 1, so idf log_docs - 0
        idf = {gram: log_docs - self._ln(float(df)) for gram, df in doc_freq.items()}
        vectors: dict[str, tuple[dict, list[float], int]] = {}

        def vector(text: str):
            """tf-idf weights, their norm per n-gram order, and the text's length (pycocoevalcap counts bigrams)."""
            if text not in vectors:
                weights, norm, length = {}, [0.0] * NGRAMS, 0
                for gram, tf in self.ngrams(text).items():
                    weights[gram] = weight = float(tf) * idf.get(gram, log_docs)
                    norm[len(gram) - 1] += weight**2
                    if len(gram) == 2:
                        length += tf
                vectors[text] = (weights, [math.sqrt(x) for x in norm], length)
            return vectors[text]

        scores = []
        for hyp, ref in corpus:
            (vec_h, norm_h, len_h), (vec_r, norm_r, len_r) = vector(hyp), vector(ref)
            penalty = np.e ** (-(float(len_h - len_r) ** 2) / (2 * CIDER_SIGMA**2))
            per_order = [0.0] * NGRAMS
            for gram, weight in vec_h.items():  # in pycocoevalcap's order; n-grams not in the reference add 0
                if gram in vec_r:
                    ref_weight = vec_r[gram]
                    per_order[len(gram) - 1] += min(weight, ref_weight) * ref_weight
            for n in range(NGRAMS):
                if norm_h[n] != 0 and norm_r[n] != 0:
                    per_order[n] /= norm_h[n] * norm_r[n]
                per_order[n] *= penalty
            scores.append(float(np.mean(np.array(per_order))) * 10.0)  # numpy's summation order, as pycocoevalcap
        return float(np.mean(np.array(scores)))

    def cider_d_resampled(self, groups: list[list[tuple[str, str]]], counts: np.ndarray) -> np.ndarray:
        """CIDEr-D of each corpus made of `groups` (e.g. games) repeated counts[b, g] times: [B, G] -> [B], equal
        to `cider_d` of that corpus up to rounding (a bootstrap's resamples).

        A corpus enters a pair's score only through the IDF, whose document frequencies are sum_g counts[b, g]
        df_g; and for IDF >= 0, min(tf_h idf, tf_r idf) tf_r idf = min(tf_h, tf_r) tf_r idf^2. So each distinct
        pair's shared n-grams and each text's n-grams are tabled once, and a resample costs two weighted
        bincounts instead of rebuilding every vector of a corpus that repeats its games."""
        vocab: dict[tuple[str, ...], int] = {}
        texts = list(dict.fromkeys(t for group in groups for pair in group for t in pair))
        text_id = {t: i for i, t in enumerate(texts)}
        grams = [{vocab.setdefault(g, len(vocab)): tf for g, tf in self.ngrams(t).items()} for t in texts]
        order = np.zeros(len(vocab), np.int64)
        for gram, i in vocab.items():
            order[i] = len(gram) - 1
        sizes = np.array([len(group) for group in groups], np.float64)
        df = np.zeros((len(groups), len(vocab)))  # [G, V]: pairs of the group whose reference holds the n-gram
        for g, group in enumerate(groups):
            for _, ref in group:
                df[g, list(grams[text_id[ref]])] += 1
        # each text's (n-gram, tf^2), keyed by text x order: its squared norms are sums of tf^2 idf^2
        t_idx = np.array([i for i, counts_ in enumerate(grams) for _ in counts_], np.int64)
        t_gram = np.array([v for counts_ in grams for v in counts_], np.int64)
        t_tf2 = np.array([tf * tf for counts_ in grams for tf in counts_.values()], np.float64)
        t_key = t_idx * NGRAMS + order[t_gram]
        # each pair's shared n-grams, min(tf_h, tf_r) tf_r, keyed by pair x order
        pairs = [pair for group in groups for pair in group]
        s_key, s_gram, s_coef = [], [], []
        for p, (hyp, ref) in enumerate(pairs):
            h, r = grams[text_id[hyp]], grams[text_id[ref]]
            for v, tf in h.items():
                if v in r:
                    s_key.append(p * NGRAMS + order[v])
                    s_gram.append(v)
                    s_coef.append(min(tf, r[v]) * r[v])
        s_key, s_gram, s_coef = np.array(s_key, np.int64), np.array(s_gram, np.int64), np.array(s_coef, np.float64)
        lengths = np.array([sum(tf for v, tf in g.items() if order[v] == 1) for g in grams], np.float64)
        hyp_of = np.array([text_id[h] for h, _ in pairs], np.int64)
        ref_of = np.array([text_id[r] for _, r in pairs], np.int64)
        penalty = np.exp(-((lengths[hyp_of] - lengths[ref_of]) ** 2) / (2 * CIDER_SIGMA**2))  # [P]
        group_of = np.repeat(np.arange(len(groups)), sizes.astype(np.int64))
        out = np.zeros(len(counts))
        for b, row in enumerate(np.asarray(counts, np.float64)):
            if row @ sizes == 0:  # only empty groups drawn: an empty corpus scores 0, as in score_corpora
                continue
            idf = np.log(row @ sizes) - np.log(np.maximum(row @ df, 1.0))  # [V]
            idf2 = idf * idf
            norm = np.sqrt(np.bincount(t_key, t_tf2 * idf2[t_gram], len(texts) * NGRAMS)).reshape(-1, NGRAMS)
            shared = np.bincount(s_key, s_coef * idf2[s_gram], len(pairs) * NGRAMS).reshape(-1, NGRAMS)
            denominator = norm[hyp_of] * norm[ref_of]  # [P, 4]; a zero norm leaves the (zero) sum as it is
            per_order = np.where(denominator != 0, shared / np.where(denominator != 0, denominator, 1.0), shared)
            score = per_order.mean(1) * penalty * 10.0  # [P]
            weight = row[group_of]
            out[b] = float((score * weight).sum() / weight.sum())
        return out

    def scores(self, corpus: list[tuple[str, str]], cider: bool = True) -> dict[str, float]:
        """BLEU 1-4, ROUGE-L and (unless `cider` is False) CIDEr of one non-empty corpus."""
        bleu = self.bleu(corpus)
        out = {**{f"Bleu_{k + 1}": bleu[k] for k in range(NGRAMS)}, "ROUGE_L": self.rouge_l(corpus)}
        if cider:
            out["CIDEr"] = self.cider_d(corpus)
        return out
