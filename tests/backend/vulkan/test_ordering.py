"""The barriers of a recorded sequence (decoder._Ordering, with Kompute patched by tools/kp_patch.py):
each dispatch waits exactly when it touches what an earlier one since the last barrier wrote, or
writes what one read; the validation layer's synchronization checks find no hazard in a decoder's
sequences, and find them when the barriers are left out (so the check can fail)."""
from __future__ import annotations

import textwrap

from vulkan_validation import layer_errors, run_under_validation

from gpt4all_core.backend.vulkan.context import get_context
from gpt4all_core.backend.vulkan.decoder import _Ordering


KEPT: list = []  # every Buf stays alive: _Ordering knows buffers by id(), as the decoder's live on


class Buf:
    def __init__(self, name: str):
        self.name = name
        KEPT.append(self)


ACTIVATIONS = {name: Buf(name) for name in "x xb q k v att scratch hb hb2".split()}


def block_barriers(order: _Ordering) -> list[str]:
    """A llama block's dispatches as the decoder records them (reads..., written last or first):
    the activations are the same for every block, the cache and weights its own."""
    x, xb, q, k, v, att, scratch, hb, hb2 = ACTIVATIONS.values()
    ck, cv = Buf("ck"), Buf("cv")
    ro = {name: Buf(name) for name in "norm wq wk wv freqs wo norm2 wg wu wd".split()}
    order.read_only |= {id(b) for b in ro.values()}
    steps = [("rms_norm", (x, ro["norm"], xb), xb), ("q", (ro["wq"], xb, q), q), ("k", (ro["wk"], xb, k), k),
             ("v", (ro["wv"], xb, v), v), ("rope q", (q, ro["freqs"]), q), ("rope+store k", (k, ro["freqs"], ck), ck),
             ("store v", (v, cv), cv), ("attention", (q, ck, cv, scratch), scratch),
             ("merge", (scratch, att), att), ("wo", (ro["wo"], att, x), x), ("rms_norm 2", (x, ro["norm2"], xb), xb),
             ("gate", (ro["wg"], xb, hb), hb), ("up", (ro["wu"], xb, hb2), hb2), ("swiglu", (hb, hb2), hb),
             ("down", (ro["wd"], hb, x), x)]
    return [name for name, tensors, out in steps if order.needs_barrier(tensors, out)]


def test_a_block_waits_only_where_it_depends():
    order = _Ordering(set(), skip=True)
    waits = block_barriers(order)
    assert waits == ["rms_norm", "q", "rope q", "attention", "merge", "wo", "rms_norm 2", "gate", "swiglu", "down"]
    # the next block's first norm reads x, which down wrote
    assert block_barriers(order)[0] == "rms_norm" and order.barriers == 20


def decode_block_barriers(order: _Ordering) -> list[str]:
    """The same block as a decode step records it: the norms inside the q, k, v and the stacked
    gate-and-up products (which writes act(gate) * up), products.fused_product."""
    x, _, q, k, v, att, scratch, _, hb2 = ACTIVATIONS.values()
    ck, cv = Buf("ck"), Buf("cv")
    ro = {name: Buf(name) for name in "norm wq wk wv freqs wo norm2 wgu wd".split()}
    order.read_only |= {id(b) for b in ro.values()}
    steps = [("q", (ro["wq"], x, q, ro["norm"]), q), ("k", (ro["wk"], x, k, ro["norm"]), k),
             ("v", (ro["wv"], x, v, ro["norm"]), v), ("rope q", (q, ro["freqs"]), q),
             ("rope+store k", (k, ro["freqs"], ck), ck), ("store v", (v, cv), cv),
             ("attention", (q, ck, cv, scratch), scratch), ("merge", (scratch, att), att),
             ("wo", (ro["wo"], att, x), x), ("gate+up", (ro["wgu"], x, hb2, ro["norm2"]), hb2),
             ("down", (ro["wd"], hb2, x), x)]
    return [name for name, tensors, out in steps if order.needs_barrier(tensors, out)]


def test_a_decode_step_block_waits_only_where_it_depends():
    order = _Ordering(set(), skip=True)
    assert decode_block_barriers(order) == ["q", "rope q", "attention", "merge", "wo", "gate+up", "down"]
    assert decode_block_barriers(order)[0] == "q" and order.barriers == 14  # q reads x, which down wrote


def roped_decode_block_barriers(order: _Ordering) -> list[str]:
    """A plain llama block's decode step (no biases, q/k norms or NEOX pairs): the q product rotates
    its own output, the k and v products write the cache (products.RopeOut), and split attention
    merges its parts itself (writing scratch, its counters and att)."""
    x, _, q, _, _, att, scratch, _, hb2 = ACTIVATIONS.values()
    ck, cv, counters = Buf("ck"), Buf("cv"), Buf("counters")
    ro = {name: Buf(name) for name in "norm wq wk wv freqs wo norm2 wgu wd".split()}
    order.read_only |= {id(b) for b in ro.values()}
    steps = [("q", (ro["wq"], x, q, ro["norm"], ro["freqs"]), q),
             ("k", (ro["wk"], x, ck, ro["norm"], ro["freqs"]), ck),
             ("v", (ro["wv"], x, cv, ro["norm"], ro["freqs"]), cv),
             ("attention", (q, ck, cv, scratch, counters, att), (scratch, counters, att)),
             ("wo", (ro["wo"], att, x), x),
             ("gate+up", (ro["wgu"], x, hb2, ro["norm2"]), hb2), ("down", (ro["wd"], hb2, x), x)]
    return [name for name, tensors, out in steps if order.needs_barrier(tensors, out)]


def test_a_roped_decode_step_block_waits_only_where_it_depends():
    order = _Ordering(set(), skip=True)
    assert roped_decode_block_barriers(order) == ["q", "attention", "wo", "gate+up", "down"]
    assert roped_decode_block_barriers(order)[0] == "q" and order.barriers == 10


def test_without_the_flag_every_dispatch_waits():
    order = _Ordering(set(), skip=False)
    assert len(block_barriers(order)) == 15


def test_write_after_read_waits():
    order, a, b = _Ordering(set(), skip=True), Buf("a"), Buf("b")
    assert order.needs_barrier((a, b), b)      # first: always
    assert not order.needs_barrier((Buf("c"), Buf("d")), Buf("d"))
    assert order.needs_barrier((Buf("e"), a), a)  # writes a, which the first read


CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from model_files import random_model
    from gpt4all_core import models
    from gpt4all_core.backend.vulkan import decoder as vd
    from gpt4all_core.backend.vulkan.devices import select_device

    if sys.argv[1] == "unordered":  # every dispatch but the first without its barrier
        needs = vd._Ordering.needs_barrier
        def first_only(self, tensors, out, force=False):
            first = self.first
            needs(self, tensors, out, force)
            return first
        vd._Ordering.needs_barrier = first_only
    with models.load(random_model("llama", qtype="Q8_0"), device=select_device("vulkan:0")) as model:
        dec, cache = model.decoder, model.new_cache(16)
        tokens = np.arange(100, 108, dtype=np.int32)
        pos = np.arange(8, dtype=np.int32)
        dec.forward(cache, tokens, pos, pos, 8, 1)
        for p in range(8, 10):
            one = np.array([p], np.int32)
            dec.forward(cache, one + 100, one, one, p + 1, 1)
    print("ran:", sys.argv[1])
""")


def test_the_synchronization_validation_finds_no_hazard(tmp_path):
    assert get_context(0).can_skip_barriers, "kp lacks tools/kp_patch.py's barrier flag: run ./dev.sh"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ordered = run_under_validation(CHILD, tmp_path / "a", "ordered", sync=True, timeout=600)
    assert "ran: ordered" in ordered and layer_errors(ordered) == [], "\n".join(layer_errors(ordered)[:10])
    unordered = run_under_validation(CHILD, tmp_path / "b", "unordered", sync=True, timeout=600)
    hazards = [line for line in layer_errors(unordered) if "SYNC-HAZARD" in line]
    assert "ran: unordered" in unordered and hazards, unordered[-3000:]


def test_prefetches_add_no_hazard(tmp_path, monkeypatch):
    """$GPT4ALL_CORE_VULKAN_PREFETCH (prefetch.py): the prefetch dispatches recorded without
    barriers at the ends of stages, each writing a sink of its own, leave the synchronization
    validation as clean as without them."""
    monkeypatch.setenv("GPT4ALL_CORE_VULKAN_PREFETCH", "1")
    monkeypatch.setenv("GPT4ALL_CORE_VULKAN_FLAGS", "0")
    out = run_under_validation(CHILD, tmp_path, "ordered", sync=True, timeout=600)
    assert "ran: ordered" in out and layer_errors(out) == [], "\n".join(layer_errors(out)[:10])


def test_a_decoder_records_fewer_barriers_than_dispatches():
    """A two-block llama decode step: 7 dispatches a block, 5 behind a barrier (the roped form
    above), then the head's normalizing product (one token: no gather of the rows wanting logits)."""
    import numpy as np
    from model_files import random_model

    from gpt4all_core import models
    from gpt4all_core.backend.vulkan.devices import select_device
    with models.load(random_model("llama", qtype="Q8_0"), device=select_device("vulkan:0")) as model:
        one = np.array([0], np.int32)
        model.decoder.forward(model.new_cache(8), one + 5, one, one, 1, 1)
        barriers, dispatches = model.decoder.barriers[(1, 1)]
    assert (barriers, dispatches) == (1 + 2 * 5 + 1, 1 + 2 * 7 + 1)
