"""Whole models on the Vulkan backend (lavapipe in CI) against float64 references and the CPU
backend: random llama, Qwen2 and Gemma 3 files, SmolLM2 and Gemma 3 270M, Session with context
erase, several sequences in one batch, batches split over passes, and models split between the
CPU and the device (ngl)."""
from __future__ import annotations

import numpy as np
import pytest
from gemma3_reference import ReferenceGemma3
from llama_reference import ReferenceLlama
from fixture_paths import TEST_DATA, need
from model_files import SMOLLM2, dequantized, random_model

from gpt4all_core import models
from gpt4all_core.backend.vulkan import decoder as vk_decoder
from gpt4all_core.backend.vulkan import switches
from gpt4all_core.backend.vulkan.context import VulkanError
from gpt4all_core.backend.vulkan.devices import select_device
from gpt4all_core.engine.session import Session
from summary_report import REPORT

GEMMA3 = TEST_DATA / "gemma-3-270m-q4_k_m.gguf"


@pytest.fixture(scope="module")
def device():
    return select_device("vulkan:0")


def all_logits(model, tokens, f16=False):
    pos = np.arange(len(tokens))
    return model.decoder.forward(model.new_cache(max(8, len(tokens)), f16=f16), np.array(tokens), pos, pos,
                                 len(tokens), n_logits=len(tokens))


@pytest.mark.parametrize("arch, qtype", [("llama", "F32"), ("qwen2", "F32"), ("llama", "Q8_0"), ("qwen2", "Q4_0")])
def test_random_files_against_float64(device, arch, qtype):
    """Weights dequantized exactly by the reference and activations in float: what is left is the
    device's float32 arithmetic (qwen2 adds Q/K/V biases and NeoX RoPE; 8 query heads on 1 KV head
    in the Q4_0 file)."""
    kw = {"n_head": 8, "n_head_kv": 1} if qtype == "Q4_0" else {}
    path = random_model(arch, qtype=qtype, **kw)
    tokens = list(range(100, 140))
    expected = ReferenceLlama(path).feed(tokens)
    with models.load(path, device=device) as model:
        assert isinstance(model.decoder, vk_decoder.VulkanDecoder)
        ours = all_logits(model, tokens)
    err = np.abs(ours - expected).max() / max(1.0, np.abs(expected).max())
    REPORT.append(f"vulkan random-{arch}-{qtype}: max |logit - float64| {err:.1e} (relative)")
    assert err < 2e-4


def test_gemma3_random_with_window_and_softcap_against_float64(device):
    """Sliding window 8 over a 64-token prompt, per-block RoPE bases, QK norms, post norms, GELU,
    and the final soft-cap."""
    path = random_model("gemma3", qtype="F32", window=8, swa_pattern=[True, False], final_softcap=3.0,
                        rope_base_swa=10000.0)
    tokens = list(range(100, 164))
    expected = ReferenceGemma3(path).feed(tokens)
    with models.load(path, device=device) as model:
        ours = all_logits(model, tokens)
    assert np.abs(ours - expected).max() < 2e-4 * max(1.0, np.abs(expected).max())


def test_smollm2_matches_the_cpu_on_the_same_weights(device):
    """SmolLM2 Q4_1 on the device against the CPU running the same weights dequantized to F32 (so
    neither side rounds activations): the logits of a 48-token prompt agree to float rounding, and
    greedy decoding gives the same tokens."""
    path = need(SMOLLM2)
    with models.load(path, device=device) as model:
        tokens = model.tokenizer.encode("The capital of France is Paris, and the capital of Germany is")[:48]
        ours = all_logits(model, tokens, f16=True)
        session = Session(model, n_ctx=128, n_batch=16)
        greedy_ours = greedy(session, tokens, 12)
    with models.load(dequantized(path)) as exact_model:
        exact = all_logits(exact_model, tokens, f16=True)
        greedy_exact = greedy(Session(exact_model, n_ctx=128, n_batch=16), tokens, 12)
    diff = np.abs(ours - exact)
    REPORT.append(f"vulkan SmolLM2-Q4_1: max |logit - CPU on F32 weights| {diff.max():.4f}, mean {diff.mean():.5f}")
    assert diff.mean() < 0.01 and diff.max() < 0.1
    assert (ours.argmax(1) == exact.argmax(1)).mean() >= 0.95
    assert greedy_ours == greedy_exact


def test_gemma3_270m_matches_the_cpu(device):
    """The real Gemma 3 file (Q4_K, Q6_K, Q8_0? whatever it mixes) on the device against the CPU on
    its weights dequantized to F32, over a 32-token prompt."""
    path = need(GEMMA3)
    with models.load(path, device=device) as model:
        tokens = model.tokenizer.encode("The quick brown fox jumps over the lazy dog because")[:32]
        ours = all_logits(model, tokens, f16=True)
    with models.load(dequantized(path)) as exact_model:
        exact = all_logits(exact_model, tokens, f16=True)
    diff = np.abs(ours - exact)
    REPORT.append(f"vulkan gemma-3-270m: max |logit - CPU on F32 weights| {diff.max():.4f}, mean {diff.mean():.5f}")
    assert diff.mean() < 0.02 and diff.max() < 0.25
    assert (ours.argmax(1) == exact.argmax(1)).mean() >= 0.9


def greedy(session, prompt, n):
    logits = session.prompt(prompt)
    out = []
    for _ in range(n):
        tok = int(np.argmax(logits))
        out.append(tok)
        logits = session.feed([tok])
    return out


def test_session_context_erase_matches_the_cpu(device):
    """A context of 32 filled past its end: the device's cache shift (copy and re-rotation of the
    keys) gives the logits the CPU's does."""
    path = random_model("llama", qtype="F32")
    tokens = [int(t) for t in np.random.default_rng(0).integers(100, 3000, 60)]
    results = []
    for dev in (device, None):
        with models.load(path, device=dev) as model:
            s = Session(model, n_ctx=32, n_batch=8, f16_cache=True)
            s.prompt(tokens[:30])
            logits = [s.feed([t]) for t in tokens[30:]]
            results.append((np.array(logits), s.n_erased, list(s.tokens)))
    (gpu, gpu_erased, gpu_tokens), (cpu, cpu_erased, cpu_tokens) = results
    assert gpu_erased == cpu_erased > 0 and gpu_tokens == cpu_tokens
    assert np.abs(gpu - cpu).max() < 0.02 * max(1.0, np.abs(cpu).max())


def test_several_sequences_in_one_batch(device):
    """Two sequences in one cache, decoded together with kv_ranges and logit_rows: each gets what
    it gets alone."""
    path = random_model("llama", qtype="Q8_0")
    with models.load(path, device=device) as model:
        a, b = [5, 6, 7, 8, 9], [300, 301, 302]
        alone = []
        for seq in (a, b):
            alone.append(all_logits(model, seq)[-1])
        cache = model.new_cache(16, f16=False)
        toks = np.array(a + b, np.int32)
        pos = np.array(list(range(5)) + list(range(3)), np.int32)
        slots = np.arange(8, dtype=np.int32)
        ranges = np.array([[0, 5]] * 5 + [[5, 8]] * 3, np.int32)
        both = model.decoder.forward(cache, toks, pos, slots, 8, kv_ranges=ranges, logit_rows=[7, 4])
    assert np.abs(both[0] - alone[1]).max() < 1e-4 * max(1.0, np.abs(alone[1]).max())
    assert np.abs(both[1] - alone[0]).max() < 1e-4 * max(1.0, np.abs(alone[0]).max())


def test_batches_longer_than_a_pass_and_split_models(device):
    """A decoder recorded for 8 tokens runs 21 in three passes; a model with ngl=1 of 2 blocks runs
    its first block on the CPU: both give the one-pass, all-device logits."""
    path = random_model("llama", qtype="F32")
    tokens = list(range(200, 221))
    with models.load(path, device=device) as model:
        whole = all_logits(model, tokens)
        small = vk_decoder.VulkanDecoder(*model._decoder_args, model.decoder.ctx, max_batch=8)
        pos = np.arange(len(tokens))
        passes = small.forward(small.new_cache(32, f16=False), np.array(tokens), pos, pos, len(tokens), len(tokens))
    assert np.abs(passes - whole).max() < 1e-5 * max(1.0, np.abs(whole).max())
    with models.load(path, device=device, ngl=1) as model:
        assert isinstance(model.decoder, vk_decoder.SplitDecoder)
        split = all_logits(model, tokens)
    assert np.abs(split - whole).max() < 2e-4 * max(1.0, np.abs(whole).max())


def test_a_model_too_large_for_the_device_is_refused_before_upload(device, monkeypatch):
    from gpt4all_core.backend.vulkan import devices
    small = devices.DeviceInfo(**{**device.__dict__, "device_local_bytes": 1 << 20})
    monkeypatch.setattr(devices, "device_info", lambda index: small)
    with pytest.raises(VulkanError, match="MiB"):
        models.load(need(SMOLLM2), device=small)


def _one_token_passes(model, tokens):
    """(logits of each token, the cache): the tokens fed one a pass into a fresh F32 cache, so
    between passes only the per-pass values (positions, slots) change."""
    cache = model.new_cache(16, f16=False)
    rows = [model.decoder.forward(cache, np.array([t]), np.array([i]), np.array([i]), i + 1, 1)[0]
            for i, t in enumerate(tokens)]
    return np.array(rows), cache


def _logits_under(monkeypatch, device, variable, values, tokens, check=lambda value, model, cache: None) -> dict:
    """{value: _one_token_passes' logits} of a random llama Q8_0 model loaded with the environment
    variable at each value; check(value, model, cache) runs after each."""
    got = {}
    for value in values:
        monkeypatch.setenv(variable, value)
        with models.load(random_model("llama", qtype="Q8_0"), device=device) as model:
            got[value], cache = _one_token_passes(model, tokens)
            check(value, model, cache)
    return got


def test_spin_waited_passes_give_the_same_logits(device, monkeypatch):
    """$GPT4ALL_CORE_VULKAN_WAIT=spin (the host polls each pass's fence, tools/kp_patch.py's
    spin_wait) records sequences with the flag on and gives the same bits as sleeping on the fence;
    a bad value is named."""
    def flagged(wait, model, cache):
        assert [seq.spin_wait for seq, _ in cache.sequences.values()] == [wait == "spin"]

    path = random_model("llama", qtype="Q8_0")
    got = _logits_under(monkeypatch, device, switches.WAIT_ENV, ("sleep", "spin"), list(range(100, 108)), flagged)
    assert np.array_equal(got["sleep"], got["spin"])
    monkeypatch.setenv(switches.WAIT_ENV, "busy")
    with models.load(path, device=device) as model:
        with pytest.raises(ValueError, match="GPT4ALL_CORE_VULKAN_WAIT"):
            model.decoder.forward(model.new_cache(4), np.array([1]), np.array([0]), np.array([0]), 1, 1)


def test_passes_with_one_fence_give_the_same_logits(device, monkeypatch):
    """$GPT4ALL_CORE_VULKAN_FENCE=reuse (the default: one fence a recorded pass, reset before each
    submit, tools/kp_patch.py's reuse_fence) against =fresh (a fence made and destroyed each
    submit, as stock Kompute): sequences recorded with the flag as asked, the same bits over passes
    that reuse it; a bad value is named; a sequence that kept its fence is destroyed cleanly."""
    def flagged(fence, model, cache):
        assert [seq.reuse_fence for seq, _ in cache.sequences.values()] == [fence == "reuse"]

    got = _logits_under(monkeypatch, device, switches.FENCE_ENV, ("fresh", "reuse"), list(range(100, 108)), flagged)
    assert np.array_equal(got["fresh"], got["reuse"])
    monkeypatch.setenv(switches.FENCE_ENV, "new")
    with models.load(random_model("llama", qtype="Q8_0"), device=device) as model:
        with pytest.raises(ValueError, match="GPT4ALL_CORE_VULKAN_FENCE"):
            model.decoder.forward(model.new_cache(4), np.array([1]), np.array([0]), np.array([0]), 1, 1)


def _kompute(*flags):
    """A stand-in for kp whose Sequence has these tools/kp_patch.py flags (none: a stock Kompute)."""
    return type("kp", (), {"Sequence": type("Sequence", (), dict.fromkeys(flags, False))})


def test_fences_are_reused_by_default_where_kompute_can(monkeypatch):
    """$GPT4ALL_CORE_VULKAN_FENCE unset: passes keep one fence where Kompute has the patch's
    reuse_fence, else a fresh one each submit; reuse asked of a stock Kompute is refused by name."""
    Patched, Stock = _kompute("reuse_fence"), _kompute()
    monkeypatch.delenv(switches.FENCE_ENV, raising=False)
    assert switches.reuse_fence(Patched) is True
    assert switches.reuse_fence(Stock) is False
    monkeypatch.setenv(switches.FENCE_ENV, "fresh")
    assert switches.reuse_fence(Patched) is False
    monkeypatch.setenv(switches.FENCE_ENV, "reuse")
    with pytest.raises(VulkanError, match="patched Kompute"):
        switches.reuse_fence(Stock)


def test_pass_values_in_host_memory_give_the_same_logits(device, monkeypatch):
    """$GPT4ALL_CORE_VULKAN_PARAMS=host (the per-batch parameters and the slot positions read from
    host-visible memory, for A/B runs) against the default (device memory, synced at the start of
    each pass): the same bits, across passes whose positions and slots change; a bad value is named."""
    def kind_of(kind, model, cache):
        assert model.decoder.params_kind == kind

    path = random_model("llama", qtype="Q8_0")
    tokens = list(range(100, 112))
    got = _logits_under(monkeypatch, device, switches.PARAMS_ENV, ("device", "host"), tokens, kind_of)
    assert np.array_equal(got["device"], got["host"])
    with models.load(path, device=device) as model:  # and what one pass over all of them gives
        whole = all_logits(model, tokens)[-1]
    assert np.abs(got["device"][-1] - whole).max() < 1e-4 * max(1.0, np.abs(whole).max())
    monkeypatch.setenv(switches.PARAMS_ENV, "shared")
    with pytest.raises(ValueError, match="GPT4ALL_CORE_VULKAN_PARAMS"):
        models.load(path, device=device)


def test_products_that_rotate_and_store_match_the_separate_ops(device, monkeypatch):
    """Decode steps with q rotated and k, v stored into the cache by their own products and split
    attention merged by its last workgroup (the default) against $GPT4ALL_CORE_VULKAN_FUSE=norm
    (RoPE, the stores and the merge as dispatches of their own) and =0 (nothing fused): the same
    logits to float rounding, with two barriers and four dispatches fewer a block; a bad value is
    named."""
    recorded = {}
    monkeypatch.setenv("GPT4ALL_CORE_VULKAN_FLAGS", "0")  # barriers counted as barriers, not stage flags

    def count(value, model, cache):
        recorded[value] = model.decoder.barriers[(1, 1)]

    got = _logits_under(monkeypatch, device, switches.FUSE_ENV, ("1", "norm", "0"), list(range(100, 110)), count)
    scale = max(1.0, np.abs(got["0"]).max())
    assert np.abs(got["1"] - got["norm"]).max() < 1e-5 * scale
    assert np.abs(got["1"] - got["0"]).max() < 1e-4 * scale
    n_block = 2
    assert recorded["norm"][0] - recorded["1"][0] == 2 * n_block
    assert recorded["norm"][1] - recorded["1"][1] == 4 * n_block
    monkeypatch.setenv(switches.FUSE_ENV, "rope")
    with models.load(random_model("llama", qtype="Q8_0"), device=device) as model:
        with pytest.raises(ValueError, match="GPT4ALL_CORE_VULKAN_FUSE"):
            model.decoder.forward(model.new_cache(4), np.array([1]), np.array([0]), np.array([0]), 1, 1)


def test_passes_spin_on_a_gpu_and_sleep_on_a_cpu_device_by_default(monkeypatch):
    """$GPT4ALL_CORE_VULKAN_WAIT unset: a GPU's passes poll their fence (the host sees them end at
    once), a CPU device's (lavapipe, whose threads need the cores) sleep; a Kompute without the
    patch's spin_wait sleeps unless spinning is asked for, which is then refused by name."""
    Patched, Stock = _kompute("spin_wait"), _kompute()
    monkeypatch.delenv(switches.WAIT_ENV, raising=False)
    assert switches.spin_wait(Patched, cpu_device=False) is True
    assert switches.spin_wait(Patched, cpu_device=True) is False
    assert switches.spin_wait(Stock, cpu_device=False) is False
    monkeypatch.setenv(switches.WAIT_ENV, "sleep")
    assert switches.spin_wait(Patched, cpu_device=False) is False
    monkeypatch.setenv(switches.WAIT_ENV, "spin")
    assert switches.spin_wait(Patched, cpu_device=True) is True
    with pytest.raises(VulkanError, match="patched Kompute"):
        switches.spin_wait(Stock, cpu_device=False)


def test_attention_split_count_is_a_setting(device, monkeypatch):
    """$GPT4ALL_CORE_VULKAN_ATTN_SPLIT (read when a pass is recorded; the scratch is sized for the
    most): 1 part (the unsplit kernel) and 3 give the default's logits to float rounding; a bad
    value is named."""
    split_into = []  # the part counts of the split kernels recorded
    merged = vk_decoder.ops.attention_split_merged
    monkeypatch.setattr(vk_decoder.ops, "attention_split_merged", lambda *a: split_into.append(a[-1]) or merged(*a))
    tokens = list(range(100, 110))
    got = _logits_under(monkeypatch, device, switches.ATTENTION_SPLIT_ENV, ("", "1", "3"), tokens)
    assert set(split_into) == {switches.ATTENTION_SPLIT, 3}
    scale = max(1.0, np.abs(got[""]).max())
    assert np.abs(got["1"] - got[""]).max() < 1e-5 * scale and np.abs(got["3"] - got[""]).max() < 1e-5 * scale
    for bad in ("0", "65", "two"):
        monkeypatch.setenv(switches.ATTENTION_SPLIT_ENV, bad)
        with models.load(random_model("llama", qtype="Q8_0"), device=device) as model:
            with pytest.raises(ValueError, match="GPT4ALL_CORE_VULKAN_ATTN_SPLIT"):
                model.decoder.forward(model.new_cache(4), np.array([1]), np.array([0]), np.array([0]), 1, 1)
