"""Memory estimates against what the engine really allocates: the KV cache byte for byte, the
working memory of a prompt batch as traced; the largest context that fits; layers per device."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from gpt4all_core import gguf, models
from gpt4all_core.engine.session import Session
from gpt4all_core.errors import UnsupportedModelError
from gpt4all_core.gguf import ArrayType, GGUFValueType, GGUFWriter
from gpt4all_core.hub.estimate import Device, estimate, fit_layers, hparams
from gpt4all_core.hub.remote import RemoteGGUF


@pytest.mark.parametrize("fixture", ["smollm2_path", "gemma3_path"])
def test_kv_cache_and_working_memory_as_allocated(fixture, request):
    path = request.getfixturevalue(fixture)
    n_ctx, n_batch = 512, 8
    with gguf.open(path) as f:
        est = estimate([f], n_ctx, n_batch=n_batch, ram=1 << 40)
        weights = sum(t.nbytes for t in f.tensors.values())
    hp = est.hparams
    with models.load(path) as model:
        tracemalloc.start()
        try:
            session = Session(model, n_ctx=n_ctx, n_batch=n_batch)
            allocated_kv = sum(a.nbytes for a in session.cache.k + session.cache.v)
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            session.prompt(list(range(1, n_batch + 1)))  # one full batch: the decoder's scratch and the logits
            batch_peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
    assert est.kv_cache == allocated_kv == 2 * hp.n_block * n_ctx * hp.n_head_kv[0] * hp.key_length * 2
    assert est.weights == weights
    erase_buffer = 4 * n_ctx * hp.n_head_kv[0] * hp.key_length  # malloc'd in C only while the context shifts
    assert abs((est.working - erase_buffer) - batch_peak) <= 0.02 * batch_peak + 4096, (est.working, batch_peak)
    assert est.max_ctx_ram == hp.n_ctx_train and est.total == est.weights + est.kv_cache + est.working


def test_smollm2_numbers(smollm2_path):
    with gguf.open(smollm2_path) as f:
        est = estimate([f], 2048, ram=1 << 40)
    assert est.kv_cache == 2 * 30 * 2048 * 3 * 64 * 2  # MODELS.md: 30 blocks, 3 KV heads, head size 576/9
    assert est.hparams.n_ctx_train == 8192 and est.hparams.n_vocab == 49152
    assert "no Vulkan backend yet" in " ".join(est.notes) and est.devices == []


def test_largest_context_that_fits(smollm2_path):
    with gguf.open(smollm2_path) as f:
        at_1000 = estimate([f], 1000, ram=1 << 40)
        est = estimate([f], 1000, ram=at_1000.total)
        assert est.max_ctx_ram == 1000
        assert estimate([f], 1000, ram=at_1000.total - 1).max_ctx_ram == 999
        assert estimate([f], 10, ram=at_1000.weights // 2).max_ctx_ram == 0  # not even the weights fit


def test_layers_per_device(smollm2_path):
    with gguf.open(smollm2_path) as f:
        est = estimate([f], 1024, ram=1 << 40, devices=[Device("big", 1 << 40), Device("none", 0)])
        hp = hparams(f)
        per_block = sum(t.nbytes for t in f.tensors.values() if t.name.startswith("blk.0."))
    kv_block = 2 * 1024 * 3 * 64 * 2
    big, none = est.devices
    assert (big.n_gpu_layers, big.bytes_used) == (31, est.weights + est.kv_cache)  # every block and the output
    assert (none.n_gpu_layers, none.bytes_used) == (0, 0)
    fit = fit_layers(hp, [per_block] * 30, 10**9, 1024, Device("small", 5 * (per_block + kv_block) + 1))
    assert fit.n_gpu_layers == 5 and fit.bytes_used == 5 * (per_block + kv_block)


def test_remote_estimate_equals_local(hub, smollm2_path):
    url = hub.add_file("s.gguf", smollm2_path.read_bytes())
    with RemoteGGUF(url) as r, gguf.open(smollm2_path) as f:
        assert estimate([r], 4096, ram=1 << 33).as_dict() == estimate([f], 4096, ram=1 << 33).as_dict()


def _write(tmp_path, arch, keys, tensors=()):
    p = tmp_path / f"{arch}.gguf"
    with GGUFWriter(p) as w:
        w.add("general.architecture", arch)
        for k, v in keys.items():
            w.add(f"{arch}.{k}", v, ArrayType(GGUFValueType.INT32) if isinstance(v, np.ndarray) else None)
        for name, arr in tensors:
            w.add_tensor(name, arr)
    return p


def test_qwen2_per_layer_heads_bert_and_missing_keys(tmp_path):
    base = {"block_count": 3, "embedding_length": 64, "attention.head_count": 8, "feed_forward_length": 128,
            "context_length": 256}
    q = _write(tmp_path, "qwen2", {**base, "attention.head_count_kv": np.array([2, 4, 2], np.int32)},
               [("token_embd.weight", np.zeros((100, 64), np.float32))])
    with gguf.open(q) as f:
        est = estimate([f], 256, ram=1 << 30)
    assert est.kv_cache == 256 * 2 * 2 * 8 * (2 + 4 + 2) and est.hparams.n_vocab == 100
    b = _write(tmp_path, "bert", base, [("token_embd.weight", np.zeros((100, 64), np.float32))])
    with gguf.open(b) as f:
        est = estimate([f], 128, ram=1 << 30)
    assert est.kv_cache == 0 and est.working > 0 and any("encoder" in n for n in est.notes)
    bad = _write(tmp_path, "llama", {"embedding_length": 64})
    with gguf.open(bad) as f, pytest.raises(UnsupportedModelError, match="no llama.block_count"):
        estimate([f], 128)
    with gguf.open(q) as f, pytest.raises(ValueError, match="n_ctx must be a positive integer"):
        estimate([f], 0)
