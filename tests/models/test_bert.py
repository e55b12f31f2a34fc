"""The bert architecture on all-MiniLM-L6-v2 (converted by us to F32, F16 and Q8_0) against a float64
numpy BERT and against llama.cpp (llama-cpp-python, test-only) on the same files: embeddings,
mean and CLS pooling, batching, texts of different lengths in one batch; and loading errors.

Tolerances. F32 and F16 files: cosine >= 0.9999 to both references (measured: 1 - cos at most 1.1e-6
to numpy, where the GELU is the exact erf form and ours llama.cpp's tanh one; 3e-7 to llama.cpp,
which rounds the activations to F16 for F16 weights). Q8_0: both engines quantize the activations
to 8 bits on the fly, which moves an embedding away from the exact product of the file's weights
(measured: worst 1 - cos 7.5e-4 to numpy, 3.2e-4 to llama.cpp), so the bound there is 0.998.
"""
from __future__ import annotations

import llama_cpp
import numpy as np
import pytest
from bert_files import minilm_folder
from bert_reference import ReferenceBert, cosine, gelu_tanh
from summary_report import REPORT

from gpt4all_core import GPT4All, models
from gpt4all_core.errors import UnsupportedModelError
from gpt4all_core.gguf import GGUFValueType, GGUFWriter
from gpt4all_core.gguf import open as gguf_open
from gpt4all_core.models.base import ModelFileError
from gpt4all_core.models.bert import BertModel

TEXTS = [
    "A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
    "A man is riding a horse.", "A woman is playing violin.", "Two men pushed carts through the woods.",
    "x", "Hello, world! Ça va? 日本語のテキスト 🦙", "The quick brown fox jumps over the lazy dog. " * 30,
]
BOUND = {"f32": 0.9999, "f16": 0.9999, "q8_0": 0.998}


@pytest.fixture(scope="module", params=["f32", "f16", "q8_0"])
def minilm(request, minilm_gguf):
    path = minilm_gguf(request.param)
    with models.load(path) as model:
        yield request.param, path, model


@pytest.fixture(scope="module")
def f16_model(minilm_gguf):
    with models.load(minilm_gguf("f16")) as model:
        yield model


def llama_embedder(path):
    return llama_cpp.Llama(model_path=str(path), embedding=True, n_ctx=512, n_batch=512, n_ubatch=512, n_threads=2,
                           verbose=False)


def framed(model, text):
    return model.frame(model.tokenizer.encode(text, add_special=False))


def report_cosines(what, got, want):
    cos = [cosine(a, b) for a, b in zip(got, want)]
    REPORT.append(f"bert {what:38s} worst 1 - cos {1 - min(cos):.2e}  mean {1 - np.mean(cos):.2e}")
    return min(cos)


def test_loads_as_bert(minilm):
    kind, _, model = minilm
    assert isinstance(model, BertModel) and model.pooling == "mean"
    assert (model.n_embd, model.n_vocab, model.n_ctx_train) == (384, 30522, 512)
    assert model.name == "all-MiniLM-L6-v2"


def test_matches_numpy_reference(minilm):
    """Against the exact (float64, erf GELU) BERT of the file's own weights."""
    kind, path, model = minilm
    ref = ReferenceBert.from_gguf(path)
    got = model.embed(TEXTS)
    want = [ref.embed(framed(model, t)) for t in TEXTS]
    assert report_cosines(f"{kind} vs numpy (its own weights)", got, want) >= BOUND[kind]
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)


def test_f32_matches_the_hugging_face_weights(minilm_gguf):
    """The numpy BERT reading the safetensors with their Hugging Face names: checks the converter's
    tensor mapping independently of it. With llama.cpp's GELU in the reference too the two agree
    to float32 rounding."""
    ref = ReferenceBert.from_hf(minilm_folder())
    with models.load(minilm_gguf("f32")) as model:
        got = model.embed(TEXTS)
        seqs = [framed(model, t) for t in TEXTS]
    assert report_cosines("f32 vs numpy (safetensors)", got, [ref.embed(s) for s in seqs]) >= 0.9999
    assert min(cosine(a, ref.embed(s, gelu=gelu_tanh)) for a, s in zip(got, seqs)) > 1 - 1e-6


def test_matches_llama_cpp(minilm):
    kind, path, model = minilm
    llama = llama_embedder(path)
    for t in TEXTS:
        assert framed(model, t) == llama.tokenize(t.encode(), add_bos=True, special=False)
    want = llama.embed(TEXTS, normalize=True)
    assert report_cosines(f"{kind} vs llama.cpp", model.embed(TEXTS), want) >= BOUND[kind]


def test_cls_pooling(minilm_gguf):
    """A copy converted with pooling_type CLS: the first token's state, against both references."""
    path = minilm_gguf("f16", pooling="cls")
    ref = ReferenceBert.from_gguf(path)
    with models.load(path) as model:
        assert model.pooling == "cls"
        got = model.embed(TEXTS)
        seqs = [framed(model, t) for t in TEXTS]
        assert report_cosines("f16 cls vs numpy", got, [ref.embed(s, "cls") for s in seqs]) >= 0.9999
        assert report_cosines("f16 cls vs llama.cpp", got, llama_embedder(path).embed(TEXTS, normalize=True)) >= 0.9999
        mean = model.embed(TEXTS, pooling="mean")
    assert max(cosine(a, b) for a, b in zip(got, mean)) < 0.99  # really another pooling


PARAPHRASES = [
    ("A man is eating food.", "A man eats something."),
    ("The cat sits on the mat.", "A cat is sitting on a rug."),
    ("How do I reset my password?", "I forgot my password, how can I change it?"),
    ("The stock market fell sharply today.", "Share prices dropped steeply on Wednesday."),
    ("She plays the violin beautifully.", "Her violin playing is lovely."),
]


def test_paraphrases_score_far_above_unrelated(f16_model):
    a = f16_model.embed([p for p, _ in PARAPHRASES])
    b = f16_model.embed([q for _, q in PARAPHRASES])
    sims = a @ b.T
    para = np.diag(sims)
    unrelated = sims[~np.eye(len(PARAPHRASES), dtype=bool)]
    REPORT.append(f"bert paraphrase cosines {para.min():.3f}..{para.max():.3f}; unrelated "
                  f"{unrelated.min():.3f}..{unrelated.max():.3f}")
    assert para.min() > 0.6 and unrelated.max() < 0.3


def sentences(n):
    rng = np.random.default_rng(0)
    words = "the a cat dog runs quickly over under bright river mountain music code data slowly green".split()
    return [" ".join(rng.choice(words, rng.integers(1, 25))) + "." for _ in range(n)]


def test_batch_of_256_is_one_at_a_time(f16_model):
    """256 texts of 1 to 24 words in a few packed calls give the very same vectors as one call per
    text: nothing crosses between the texts of a batch."""
    texts = sentences(256)
    batch = f16_model.embed(texts)
    alone = np.array([f16_model.embed(t) for t in texts])
    assert batch.shape == (256, 384)
    assert np.array_equal(batch, alone)


def test_different_lengths_in_one_call(f16_model):
    """One C call over a 1-token, a 2-token and a 512-token sequence: each as if alone, and the
    short ones unchanged whatever shares their batch."""
    tok = f16_model.tokenizer
    long = f16_model.frame(tok.encode("word " * 600, add_special=False)[:510])
    seqs = [[tok.bos_id], f16_model.frame([]), long, framed(f16_model, "A man is eating food.")]
    together = f16_model.embed_tokens(seqs)
    for s, v in zip(seqs, together):
        assert np.array_equal(v, f16_model.embed_tokens([s])[0])
    other = f16_model.embed_tokens([seqs[3], framed(f16_model, "Something else entirely.")])
    assert np.array_equal(other[0], together[3])


def test_padding_never_enters_the_mean(f16_model):
    """The trap of MiniLM's tokenizer.json (fixed padding to 128): a text is its own tokens only, and
    the embedding is the mean of those, which differs from a mean that counts [PAD] positions."""
    ref = ReferenceBert.from_gguf(f16_model.path)
    seq = framed(f16_model, "A short sentence.")
    assert len(seq) == 6  # [CLS] a short sentence . [SEP]
    got = f16_model.embed("A short sentence.")
    assert cosine(got, ref.embed(seq)) > 0.9999
    pad = f16_model.tokenizer.vocab.special["padding"]
    padded = ref.hidden_states(seq + [pad] * (128 - len(seq)))  # [PAD] attended to, as if unmasked
    assert cosine(got, padded.mean(0)) < 0.99


def test_long_text_is_cut_to_the_context(f16_model):
    """model.embed cuts a text to the model's 512 positions ([CLS] 510 tokens [SEP])."""
    text = "word " * 700
    cut = f16_model.frame(f16_model.tokenizer.encode(text, add_special=False)[:510])
    assert np.array_equal(f16_model.embed(text), f16_model.embed_tokens([cut])[0])
    with pytest.raises(ValueError, match="512 positions"):
        f16_model.embed_tokens([cut + [100]])


def test_threads_do_not_change_the_result(f16_model):
    texts = sentences(20)
    assert np.array_equal(f16_model.embed(texts, n_threads=1), f16_model.embed(texts, n_threads=2))


def test_embed_tokens_errors(f16_model):
    with pytest.raises(ValueError, match="at least one"):
        f16_model.embed_tokens([])
    with pytest.raises(ValueError, match="empty"):
        f16_model.embed_tokens([[101, 102], []])
    with pytest.raises(ValueError, match="ids must lie"):
        f16_model.embed_tokens([[101, 30522, 102]])
    with pytest.raises(ValueError, match="texts"):
        f16_model.embed([])


def rewritten(src, dst, drop=(), set_keys=None):
    """src copied to dst without the tensors in drop and with metadata set_keys changed."""
    with gguf_open(src) as f, GGUFWriter(dst) as w:
        for key, value in (set_keys or {}).items():
            w.add(key, value, GGUFValueType.STRING if isinstance(value, str) else None)
        w.add_metadata_from(f, skip=tuple(set_keys or {}))
        for name, t in f.tensors.items():
            if name not in drop:
                w.add_tensor(name, t.data, t.type, shape=t.shape)
    return dst


def test_loading_errors(minilm_gguf, tmp_path):
    src = minilm_gguf("q8_0")
    with pytest.raises(ModelFileError, match=r"blk\.3\.ffn_down\.weight: tensor missing"):
        models.load(rewritten(src, tmp_path / "a.gguf", drop=("blk.3.ffn_down.weight",)))
    with pytest.raises(UnsupportedModelError, match="pooling_type = 4"):
        models.load(rewritten(src, tmp_path / "b.gguf", set_keys={"bert.pooling_type": 4}))
    with pytest.raises(UnsupportedModelError, match="causal"):
        models.load(rewritten(src, tmp_path / "c.gguf", set_keys={"bert.attention.causal": True}))
    with pytest.raises(ModelFileError, match="bert.block_count"):
        models.load(rewritten(src, tmp_path / "d.gguf", set_keys={"bert.block_count": "six"}))
    with pytest.raises(UnsupportedModelError, match="use Embed4All"):
        GPT4All(str(src))


def test_no_pooling_type_means_the_last_token_as_gpt4all(minilm_gguf, tmp_path):
    """A file without bert.pooling_type: llama.cpp pools nothing, and GPT4All then takes the last
    token's state; so do we."""
    src = minilm_gguf("f16")
    with gguf_open(src) as f:
        keys = {k for k in f.metadata if k != "bert.pooling_type"}
    path = tmp_path / "no-pooling.gguf"
    with gguf_open(src) as f, GGUFWriter(path) as w:
        w.add_metadata_from(f, skip=("bert.pooling_type",))
        for name, t in f.tensors.items():
            w.add_tensor(name, t.data, t.type, shape=t.shape)
    with gguf_open(path) as f:
        assert set(f.metadata) == keys
    with models.load(path) as model, models.load(src) as mean_model:
        assert model.pooling == "none"
        assert np.array_equal(model.embed(TEXTS[:3]), mean_model.embed(TEXTS[:3], pooling="last"))
