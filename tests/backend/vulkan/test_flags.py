"""Stage flags (gpt4all_core/backend/vulkan/flags.py, shaders/flags.glsl): decode steps whose
dispatches wait on counters instead of barriers give the same logits as with barriers, every
stage counts every one of its workgroups, the _flags forms of the products compute what the plain
forms do, a wait that is never satisfied gives up and is counted, and the placement of waits and
barriers follows the stages."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
from model_files import random_model
from vulkan_validation import layer_errors, run_under_validation

from gpt4all_core import models
from gpt4all_core.backend import cpu_kernels
from gpt4all_core.backend.vulkan import flags, products
from gpt4all_core.backend.vulkan.context import Caps, Dispatch, get_context, make_params, run_dispatch
from gpt4all_core.backend.vulkan.devices import select_device
from gpt4all_core.gguf.types import GGMLType

N_BLOCK = 2  # random_model's blocks


@pytest.fixture(scope="module")
def device():
    return select_device("vulkan:0")


def one_token_steps(model, tokens):
    cache = model.new_cache(16, f16=True)
    return np.array([model.decoder.forward(cache, np.array([t]), np.array([i]), np.array([i]), i + 1, 1)[0]
                     for i, t in enumerate(tokens)])


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0", "Q5_1"])
def test_flagged_steps_match_barriers_and_count_every_workgroup(device, monkeypatch, qtype):
    """With $GPT4ALL_CORE_VULKAN_FLAGS=1 a llama decode step keeps two barriers (the first
    dispatch, and the embedding's get_rows, which has no _flags form, before the first block),
    every other boundary a wait; the logits are the same bits as with barriers (the products read X
    from shared memory, in the same order), and after each step every stage's word holds all of
    its workgroups and no wait gave up."""
    tokens = list(range(100, 108))
    got, barriers = {}, {}
    for value in ("0", "1"):
        monkeypatch.setenv(flags.FLAGS_ENV, value)
        with models.load(random_model("llama", qtype=qtype), device=device) as model:
            dec = model.decoder
            cache = model.new_cache(16, f16=True)
            rows = []
            for i, t in enumerate(tokens):
                rows.append(dec.forward(cache, np.array([t]), np.array([i]), np.array([i]), i + 1, 1)[0])
                if value == "1":
                    counts = dec.flag_counts[(1, 1)]
                    assert {w: int(dec.params_view[w]) for w in counts} == counts
                    assert dec.params_view[dec.flag_base] == 0  # no wait gave up
            got[value], barriers[value] = np.array(rows), dec.barriers[(1, 1)]
            if value == "1":
                # a stage a boundary: q/k/v, attention, output projection, gate and up, down; then the head
                assert len(dec.flag_counts[(1, 1)]) == 5 * N_BLOCK + 1
    assert np.array_equal(got["0"], got["1"])
    assert barriers["1"] == (2, barriers["0"][1])  # the same dispatches, two barriers
    assert barriers["0"][0] == 5 * N_BLOCK + 2


@pytest.mark.parametrize("ktranspose", ["0", "1"])
@pytest.mark.parametrize("qtype", ["Q4_K", "Q6_K"])
def test_flags_on_k_quants(device, monkeypatch, qtype, ktranspose):
    """The K-quant products' _flags forms: the same logits, two barriers a step, with the partial
    sums added by one subgroupAdd each or in one transposing pass."""
    monkeypatch.setenv(products.KTRANSPOSE_ENV, ktranspose)
    got, barriers = {}, {}
    for value in ("0", "1"):
        monkeypatch.setenv(flags.FLAGS_ENV, value)
        with models.load(random_model("llama", n_embd=256, n_ff=512, qtype=qtype), device=device) as model:
            got[value] = one_token_steps(model, [5, 6, 7])
            barriers[value] = model.decoder.barriers[(1, 1)]
    assert np.array_equal(got["0"], got["1"])
    assert barriers["1"] == (2, barriers["0"][1]) and barriers["0"][0] == 5 * N_BLOCK + 2


def test_batches_of_several_tokens_keep_barriers(device, monkeypatch):
    """Flags are for one-token steps: a prompt pass records barriers, and the logits of a prompt
    then a step match those with flags off."""
    got = {}
    for value in ("0", "1"):
        monkeypatch.setenv(flags.FLAGS_ENV, value)
        with models.load(random_model("llama", qtype="Q8_0"), device=device) as model:
            cache = model.new_cache(16)
            pos = np.arange(5)
            first = model.decoder.forward(cache, np.arange(10, 15), pos, pos, 5, 1)
            step = model.decoder.forward(cache, np.array([3]), np.array([5]), np.array([5]), 6, 1)
            got[value] = np.concatenate([first, step])
            assert (8, 1) not in model.decoder.flag_counts
    assert np.array_equal(got["0"], got["1"])


def test_a_bad_setting_is_named(device, monkeypatch):
    monkeypatch.setenv(flags.FLAGS_ENV, "yes")
    with models.load(random_model("llama", qtype="Q8_0"), device=device) as model:
        with pytest.raises(ValueError, match="GPT4ALL_CORE_VULKAN_FLAGS"):
            one_token_steps(model, [1])


def _product_case(ggml_type, n_out, n_in, seed, glu=None):
    rng = np.random.default_rng(seed)
    rows = 2 * n_out if glu else n_out
    raw = cpu_kernels.quantize(rng.standard_normal((rows, n_in)).astype(np.float32), ggml_type)
    words = products.REGISTRY[ggml_type].pack(np.ascontiguousarray(raw).reshape(rows, -1).view(np.uint8))
    x = rng.standard_normal((1, n_in)).astype(np.float32)
    gamma = rng.standard_normal(n_in).astype(np.float32)
    return words, x, gamma


@pytest.mark.parametrize("type_name", ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                                       "Q6_K"])
@pytest.mark.parametrize("form", ["plain", "norm", "glu"])
def test_flag_forms_compute_the_plain_forms_product(device, type_name, form):
    """Each _flags form, waiting on nothing, against its plain form on random weights (90 rows,
    which do not fill the last workgroup, and 20,000 rows, which take Q4_0's whole-block shape;
    rows of 11 blocks, or 2 and 1 K-quant superblocks): the same bits, and its signal word counts
    every workgroup."""
    vk = get_context(0)
    t = int(GGMLType[type_name])
    k_quant = type_name.endswith("_K")
    for n_out, n_in in ((90, 512 if k_quant else 352), (20000, 256 if k_quant else 64)):
        glu = "silu" if form == "glu" else None
        words, x, gamma = _product_case(t, n_out, n_in, seed=n_out, glu=glu)
        if form == "plain":
            d = products.product(vk.caps, t, n_out, n_in, 1)
            extra = []
        else:
            d = products.fused_product(vk.caps, t, n_out, n_in, 1, 1e-5, glu)
            extra = [gamma]
        assert flags.capable(vk.caps, d, n_in)
        params = np.concatenate([make_params(1, n_tokens=1, n_logits=1), np.zeros(2, np.uint32)])
        base = params.size - 2
        poison = np.full((1, n_out), np.nan, np.float32)
        want, = run_dispatch(vk, d, [words, x, poison, *extra], [2], params=params)
        f = flags.flagged(d, n_in, 0, 0, base + 1, base)
        got = run_dispatch(vk, f, [words, x, poison, *extra], [2], params=params)[0]
        assert np.array_equal(got, want) and np.isfinite(want).all()
        counted = _flags_after(vk, f, [words, x, poison, *extra], params)
        assert counted[base + 1] == np.prod(d.groups) and counted[base] == 0


def _flags_after(vk, d: Dispatch, buffers, params) -> np.ndarray:
    """The parameter buffer (flags included) as the dispatch leaves it."""
    kp = vk.kp
    tensors = [vk.tensor(params)] + [vk.tensor(b) for b in buffers]
    algo = vk.algorithm(d, tensors)
    (vk.manager.sequence().record(kp.OpTensorSyncDevice(tensors)).record(kp.OpAlgoDispatch(algo))
        .record(kp.OpTensorSyncLocal([tensors[0]])).eval())
    return np.array(tensors[0].data(), copy=True)


def test_a_wait_never_satisfied_gives_up_and_is_counted(device):
    """A dispatch waiting for more workgroups than its word will ever hold polls a bounded number of
    times, counts itself in the timeout word and goes on to compute the right product (so a device
    that cannot run the stages side by side stalls and is reported, not hung)."""
    vk = get_context(0)
    t = int(GGMLType["Q8_0"])
    words, x, _ = _product_case(t, 8, 64, seed=3)
    d = products.product(vk.caps, t, 8, 64, 1)
    params = np.concatenate([make_params(1, n_tokens=1, n_logits=1), np.zeros(3, np.uint32)])
    base = params.size - 3
    want, = run_dispatch(vk, d, [words, x, np.zeros((1, 8), np.float32)], [2], params=params)
    f = flags.flagged(d, 64, base + 1, 1, base + 2, base)  # word base + 1 stays 0
    after = _flags_after(vk, f, [words, x, np.zeros((1, 8), np.float32)], params)
    assert after[base] == np.prod(d.groups)  # every workgroup gave up once
    assert after[base + 2] == np.prod(d.groups)
    got = run_dispatch(vk, f, [words, x, np.zeros((1, 8), np.float32)], [2], params=params)[0]
    assert np.array_equal(got, want)


def test_the_placement_of_waits_and_barriers():
    """Stages.place: a boundary before a capable dispatch after a stage whose dispatches all
    signalled is a wait on that stage's word for all its workgroups; after a stage with a
    dispatch that cannot signal, or before one that cannot wait, a barrier; dispatches within a
    stage share its word and its wait."""
    caps = Caps("test", max_shared_bytes=49152)
    mv = Dispatch("mul_mv_q8_0", (10, 1, 1), (64, 4, 1))
    other = Dispatch("rms_norm", (1, 1, 1), (64,))
    st = flags.Stages(base=100, n_words=8)
    d, barrier = st.place(mv, 4096, True, True)  # the first: a barrier, and it signals word 101
    assert barrier and d.shader == "mul_mv_q8_0_flags" and d.spec[20:] == (0, 0, 101, 100, 1024)
    assert d.spec[:8] == (64, 4, 1, 0, 0) + products.MV_SPEC_DEFAULTS
    d, barrier = st.place(mv, 4096, True, False)  # the same stage
    assert not barrier and d.spec[20:23] == (0, 0, 101)
    d, barrier = st.place(mv, 4096, True, True)  # waits for the 20 workgroups of word 101
    assert not barrier and d.spec[20:24] == (101, 20, 102, 100)
    d, barrier = st.place(other, None, False, False)  # joins without a form: cannot signal
    assert not barrier and d is other
    d, barrier = st.place(mv, 4096, True, True)  # after a stage that did not all signal
    assert barrier and d.spec[20:23] == (0, 0, 103)
    assert st.waits == 1 and st.expected == {101: 20, 102: 10, 103: 10}
    assert not flags.capable(caps, mv, 16384)  # 64 KiB of X does not fit
    assert not flags.capable(caps, Dispatch("mul_mv_q8_0", (10, 1, 1), (64, 4, 2)), 64)  # two columns
    assert flags.capable(caps, Dispatch("mul_mv_q4_k_norm", (10, 1, 1), (64, 2, 1)), 256)
    assert not flags.capable(caps, Dispatch("mul_mv_f16", (10, 1, 1), (64, 2, 1)), 256)  # no form
    assert flags.capable(caps, Dispatch("attention_split_merged", (32, 1, 8), (128,)))


VALIDATED = textwrap.dedent("""
    import os
    import numpy as np
    from model_files import random_model
    from gpt4all_core import models
    from gpt4all_core.backend.vulkan.devices import select_device

    os.environ["GPT4ALL_CORE_VULKAN_FLAGS"] = "1"
    with models.load(random_model("llama", qtype="Q4_0"), device=select_device("vulkan:0")) as model:
        cache = model.new_cache(16)
        for p in range(4):
            one = np.array([p], np.int32)
            model.decoder.forward(cache, one + 100, one, one, p + 1, 1)
        print("ran:", model.decoder.barriers[(1, 1)])
""")


def test_flagged_steps_run_clean_under_the_validation_layer(tmp_path):
    """The _flags shaders and their specialization constants break no valid-usage rule (the
    synchronization checks are left off: they see no barrier, and know nothing of the counters)."""
    output = run_under_validation(VALIDATED, tmp_path, timeout=300)
    assert "ran: (2, " in output
    assert layer_errors(output) == [], "\n".join(layer_errors(output)[:20])
