"""Every shader of the Vulkan backend runs clean under the Khronos validation layer: whole models
(llama with Q8_0 weights, Gemma 3 with its norms, window and soft-cap), a context erase, every
weight type's products (the K-quants' also with halves, sorted, and with plain subgroup sums) and get_rows, and the
ops the decoders do not use. A shader that needed a device feature Kompute leaves off, or a
dispatch that broke a valid-usage rule, is reported here (tests/shaders/test_build.py has the
control showing the layer does report such a shader)."""
from __future__ import annotations

import textwrap

from vulkan_validation import layer_errors, run_under_validation

CHILD = textwrap.dedent("""
    import os
    import numpy as np
    from model_files import random_model
    from gpt4all_core import models
    from gpt4all_core.backend.vulkan import ops, products
    from gpt4all_core.backend.vulkan.context import get_context, make_params, run_dispatch
    from gpt4all_core.backend.vulkan.devices import select_device
    from gpt4all_core.engine.session import Session
    from gpt4all_core.gguf.types import GGMLType

    device = select_device("vulkan:0")
    for path in (random_model("llama", qtype="Q8_0"),
                 random_model("gemma3", qtype="F32", window=8, swa_pattern=[True, False], final_softcap=3.0)):
        with models.load(path, device=device) as model:
            s = Session(model, n_ctx=16, n_batch=8)
            s.prompt(list(range(100, 112)))
            for t in range(5):
                s.feed([200 + t])  # past 16 tokens: a context erase on the device
            assert s.n_erased > 0
    vk = get_context(0)
    rng = np.random.default_rng(0)
    from gpt4all_core.backend import cpu_kernels
    for t, kern in products.REGISTRY.items():
        k = 256
        raw = cpu_kernels.quantize(rng.standard_normal((9, k)).astype(np.float32), t) if t else \\
            rng.standard_normal((9, k)).astype(np.float32).view(np.uint8)
        w = kern.pack(np.ascontiguousarray(raw).reshape(9, -1).view(np.uint8))
        for cols in (1, 37):
            d = products.product(vk.caps, t, 9, k, cols)
            x = rng.standard_normal((cols, k)).astype(np.float32)
            run_dispatch(vk, d, [w, x, np.zeros((cols, 9), np.float32)], [2],
                         params=make_params(cols, n_tokens=cols, n_logits=cols))
        d = kern.get_rows(vk.caps, k, 9, 2, 1.0)
        run_dispatch(vk, d, [w, np.zeros((2, k), np.float32)], [1],
                     params=make_params(2, n_tokens=2, tokens=[0, 8]))
        if GGMLType(t).name.endswith("_K"):  # the K-quants' mv modes other than the default
            for setting in ({products.HALVES_ENV: "1"}, {products.KSORT_ENV: "1"}, {products.KTRANSPOSE_ENV: "0"}):
                os.environ.update(setting)
                d = products.product(vk.caps, t, 9, k, 1)
                run_dispatch(vk, d, [w, x[:1], np.zeros((1, 9), np.float32)], [2],
                             params=make_params(1, n_tokens=1, n_logits=1))
                for name in setting:
                    del os.environ[name]
    x = rng.standard_normal((3, 40)).astype(np.float32)
    p = make_params(3, n_tokens=3)
    run_dispatch(vk, ops.layer_norm(vk.caps, 40, 0, 1e-5, 3), [x, np.ones(40, np.float32), np.zeros(40, np.float32),
                 np.zeros_like(x)], [3], params=p)
    run_dispatch(vk, ops.softmax(vk.caps, 40, 3, 0.5), [x, np.zeros_like(x)], [1], params=p)
    run_dispatch(vk, ops.mul(vk.caps, 40, 0, 3), [x, x.copy()], [0], params=p)
    run_dispatch(vk, ops.scale(vk.caps, 40, 0, 2.0, 3), [x], [0], params=p)
    q, kv = rng.standard_normal((1, 2, 8)).astype(np.float32), rng.standard_normal(32).astype(np.float32).view(np.uint32)
    first, merge = ops.attention_split(vk.caps, 2, 1, 8, False, 0, 0.35, 0.0, False, 1, 3)
    pa = make_params(1, n_tokens=1, n_kv=4, pos=[3])
    scratch = np.zeros(ops.attention_scratch_floats(2, 8, 1, 3), np.float32)
    scratch, = run_dispatch(vk, first, [q, kv, kv.copy(), np.arange(4, dtype=np.int32), scratch], [4], params=pa)
    run_dispatch(vk, merge, [scratch, np.zeros_like(q)], [1], params=pa)
    print("ran:", vk.caps.name, len(products.REGISTRY), "types")
""")


def test_the_backend_runs_clean_under_the_validation_layer(tmp_path):
    output = run_under_validation(CHILD, tmp_path, timeout=600)
    assert "ran:" in output
    assert layer_errors(output) == [], "\n".join(layer_errors(output)[:20])
