"""GPT4All's embedding procedure on a BERT model (the gpt4all package's llmodel embedInternal, step
by step): texts to token windows of the model's context, windows packed into batches, batches
through the encoder, each text's window embeddings normalized, averaged and normalized again.

api.Embed4All checks the arguments and picks the prefix; this module does the work:

- a text is tokenized without [CLS]/[SEP]; an empty one is replaced by GPT4All's placeholder;
- a window is the prefix tokens ([CLS], or [CLS] "prefix:"), up to max_len text tokens and [SEP],
  max_len = min(n_ctx_train, n_batch) - prefix - 1; "mean" mode makes windows that overlap by 8
  tokens until the text is covered, "truncate" keeps the first one;
- windows are packed in order into batches of at most n_batch tokens (one C call each), and
  cancel_cb sees the batch sizes before any runs;
- n_prompt_tokens counts the text tokens of every window (the overlaps twice), as GPT4All does.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from gpt4all_core.errors import CancellationError, EmbeddingError

ATLAS_MAX_TOKENS = 8192  # Nomic Atlas' text limit
CHUNK_OVERLAP = 8  # tokens that consecutive windows share, as Atlas chunks
EMPTY_PLACEHOLDER = "24df574ea1c998de59d5be15e769658e"  # what GPT4All embeds for an empty text (MD5 of "nomic empty")

CancelCallback = Callable[[list[int], str], bool]


def windows(tokens: list[int], prefix: list[int], sep: int, max_len: int, do_mean: bool) -> list[list[int]]:
    """The windows GPT4All runs for one text: prefix + tokens[j:j + max_len] + [sep], j stepping by
    max_len - CHUNK_OVERLAP; only the first one unless do_mean."""
    out = []
    j = 0
    while j < len(tokens):
        if j:
            j -= CHUNK_OVERLAP
        end = min(j + max_len, len(tokens))
        out.append(prefix + tokens[j:end] + [sep])
        if not do_mean:
            break
        j += max_len
    return out


def pack(sizes: Sequence[int], n_batch: int) -> list[list[int]]:
    """Indices of windows grouped in order into batches of at most n_batch tokens, as GPT4All packs
    them (a batch closes when the next window would overflow it)."""
    batches: list[list[int]] = [[]]
    used = 0
    for i, size in enumerate(sizes):
        if used + size > n_batch and batches[-1]:
            batches.append([])
            used = 0
        batches[-1].append(i)
        used += size
    return batches


def embed_texts(model, texts: Sequence[str], prefix: str, dimensionality: int, do_mean: bool, atlas: bool,
                cancel_cb: CancelCallback | None, n_batch: int, n_threads: int | None = None,
                matryoshka: bool = False) -> tuple[np.ndarray, int]:
    """float32 [len(texts), dimensionality] embeddings and the prompt token count. model is a
    models.bert.BertModel; prefix "" means none."""
    tok = model.tokenizer
    cls, sep = tok.bos_id, tok.vocab.special["separator"]
    inputs = []
    for i, text in enumerate(texts):
        ids = tok.encode(text, add_special=False)
        if atlas and len(ids) > ATLAS_MAX_TOKENS:
            if do_mean:
                raise EmbeddingError(f"text: length of text at index {i} is {len(ids)} tokens which exceeds limit "
                                     f"of {ATLAS_MAX_TOKENS} (atlas mode; long_text_mode='truncate' cuts it there)")
            ids = ids[:ATLAS_MAX_TOKENS]
        elif not ids:
            if not atlas or text:
                warnings.warn(f"text at index {i} gives no tokens; GPT4All's placeholder is embedded instead",
                              stacklevel=3)
            ids = tok.encode(EMPTY_PLACEHOLDER, add_special=False)
        inputs.append(ids)
    prefix_tokens = [cls] + (tok.encode(prefix + ":", add_special=False) if prefix else [])
    max_len = min(model.n_ctx_train, n_batch) - (len(prefix_tokens) + 1)
    if max_len <= CHUNK_OVERLAP:
        raise EmbeddingError(f"prefix: windows of {max_len} text tokens (the context less the prefix and [SEP]) "
                             f"are not longer than their overlap of {CHUNK_OVERLAP}")
    owner, runs, n_tokens = [], [], 0
    for i, ids in enumerate(inputs):
        for w in windows(ids, prefix_tokens, sep, max_len, do_mean):
            owner.append(i)
            runs.append(w)
            n_tokens += len(w) - len(prefix_tokens) - 1
    batches = pack([len(w) for w in runs], n_batch)
    if cancel_cb is not None and cancel_cb([sum(len(runs[i]) for i in b) for b in batches], "cpu"):
        raise CancellationError("operation was canceled")
    n_embd = model.n_embd
    sums = np.zeros((len(texts), n_embd), np.float64)
    counts = np.zeros(len(texts), np.int64)
    for b in batches:
        raw = model.embed_tokens([runs[i] for i in b], normalize=False, n_threads=n_threads).astype(np.float64)
        if matryoshka:  # nomic-embed-text-v1.5: layer norm (Bessel's variance), then cut to the dimensionality
            raw -= raw.mean(1, keepdims=True)
            var = (raw * raw).sum(1, keepdims=True) / (n_embd - 1)
            raw[:, :dimensionality] /= np.sqrt(var + 1e-5)
            raw[:, dimensionality:] = 0
        raw /= np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
        np.add.at(sums, [owner[i] for i in b], raw)
        np.add.at(counts, [owner[i] for i in b], 1)
    out = sums[:, :dimensionality] / counts[:, None]
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32), n_tokens
