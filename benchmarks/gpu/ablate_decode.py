"""What each kind of op costs a decode step in wall time: the one-token step recorded again with
some dispatches left out (or with no barriers at all), each variant timed as a whole, with no
timestamps (a timestamp after every op, as profile_decode.py takes them, serializes the ops and
added ~5 us each on an H100). The variants are interleaved over rounds; a variant's time is the
median of its steps. The results are wrong without the left-out ops: this is timing only.

Two more lines say how much of a step is the host's: "nothing" (every dispatch left out: the
submit, the copies of the parameters and logits, the fence) and "two in flight" (the full step of
two caches, each submitted again as soon as it finishes, so the queue never runs dry: the GPU's
time a step, with the host's gaps hidden). "forward()" is the whole step as Python calls it:
the parameters written, the submit, the logits copied out. The "spin-waited" lines poll the
fence instead of sleeping on it ($GPT4ALL_CORE_VULKAN_WAIT=spin), the "fresh fence" lines make
and destroy a fence each submit as stock Kompute does ($GPT4ALL_CORE_VULKAN_FENCE=fresh; the
default keeps one fence a sequence).

    python3 benchmarks/gpu/ablate_decode.py MODEL.gguf [--rounds 3] [-n 200] [--json F]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gpt4all_core.bench.vulkan_kernels import _eval_times  # noqa: E402
from profile_decode import rerecord  # noqa: E402  (this folder)
from settings import environment  # noqa: E402


class _Filtered:
    """A sequence that leaves out the dispatches `drop` picks (by shader name and push constants)
    and, with barriers=False, records every dispatch after the first without its barrier; copies:
    which of the step's copies it keeps ("params": the parameters and cache positions to the
    device first, "logits": the logits back last)."""

    def __init__(self, seq, kp, tags: list, drop, barriers: bool, copies=("params", "logits")):
        self._seq, self._kp, self._tags, self._drop, self._barriers = seq, kp, tags, drop, barriers
        self._copies = copies
        self.kept = self.dropped = 0

    def record(self, op):
        if isinstance(op, self._kp.OpTensorSyncDevice) and "params" not in self._copies:
            return self
        if isinstance(op, self._kp.OpTensorSyncLocal) and "logits" not in self._copies:
            return self
        if isinstance(op, self._kp.OpAlgoDispatch):
            shader, push = self._tags[-1]  # the algorithm made just before this dispatch
            if self._drop(shader, push):
                self.dropped += 1
                return self
            if not self._barriers and self.kept:
                op.barrier = False
            self.kept += 1
        self._seq.record(op)
        return self

    def __getattr__(self, name):
        return getattr(self._seq, name)

    def __setattr__(self, name, value):
        if name in ("spin_wait", "reuse_fence"):  # the decoder's settings: the sequence's own flags
            setattr(self._seq, name, value)
        else:
            object.__setattr__(self, name, value)


def variants(dec) -> dict:
    """name: (drop(shader, push) -> bool, barriers[, copies kept[, wait[, fence]]])."""
    e, q, ff, vocab = dec.n_embd, dec.q_dim, dec.n_ff, dec.n_vocab

    def product(s):
        return s.startswith("mul_")

    def qkv(s, p):
        return product(s) and s.endswith(("_norm", "_norm_rope")) and p[0] != vocab

    def ffn(s, p):
        return product(s) and (s.endswith("_glu") or (p[:2] == (e, ff)))

    def out_proj(s, p):  # the unfused product of shape (e, q): the q, k, v products are _norm forms
        return product(s) and "_norm" not in s and p[:2] == (e, q)

    return {
        "full": (lambda s, p: False, True),
        "no barriers": (lambda s, p: False, False),
        "no attention": (lambda s, p: s.startswith("attention"), True),
        "no rope, kv stores": (lambda s, p: s in ("rope", "rope_store", "kv_store"), True),
        "no q, k, v products": (qkv, True),
        "no output projection": (out_proj, True),
        "no feed-forward products": (ffn, True),
        "products only": (lambda s, p: not product(s), True),
        "products only, no barriers": (lambda s, p: not product(s), False),
        "nothing": (lambda s, p: True, True),
        "no logits copy": (lambda s, p: False, True, ("params",)),
        "no params copy": (lambda s, p: False, True, ("logits",)),
        "no copies": (lambda s, p: False, True, ()),
        "nothing, no copies": (lambda s, p: True, True, ()),
        "full, spin-waited": (lambda s, p: False, True, ("params", "logits"), "spin"),
        "nothing, spin-waited": (lambda s, p: True, True, ("params", "logits"), "spin"),
        "full, fresh fence": (lambda s, p: False, True, ("params", "logits"), "sleep", "fresh"),
        "nothing, no copies, fresh fence": (lambda s, p: True, True, (), "sleep", "fresh"),
    }


def record(dec, cache, drop, barriers: bool, copies=("params", "logits"), wait="sleep", fence="reuse"):
    """The one-token step recorded again through _Filtered; wait and fence: $GPT4ALL_CORE_VULKAN_WAIT's
    and $GPT4ALL_CORE_VULKAN_FENCE's values."""
    from gpt4all_core.backend.vulkan.switches import FENCE_ENV, WAIT_ENV
    tags: list = []

    def tag(dispatch, tensors):
        tags.append((dispatch.shader, tuple(int(v) for v in (dispatch.push or ()))))

    def filtered(manager, *args, **kwargs):
        return _Filtered(manager.sequence(*args, **kwargs), dec.ctx.kp, tags, drop, barriers, copies)

    with environment({WAIT_ENV: wait, FENCE_ENV: fence}):
        return rerecord(dec, cache, tag, filtered)


def one_dispatch(ctx):
    """A sequence of one one-word copy between two small buffers: a submit's round trip."""
    from gpt4all_core.backend.vulkan import ops
    from gpt4all_core.backend.vulkan.context import make_params
    P = ctx.tensor(make_params(1, n_tokens=1), "host")
    a, b = (ctx.tensor(np.zeros(64, np.uint32), "storage") for _ in range(2))
    seq = _Filtered(ctx.sequence(), ctx.kp, [("copy_words", ())], lambda s, p: False, True)
    seq.record(ctx.kp.OpAlgoDispatch(ctx.algorithm(ops.copy_words(ctx.caps, 0, 0, 1, same_buffer=False), [P, a, b])))
    return seq


def two_in_flight(a, b, n: int, warm_s: float = 0.3) -> float:
    """Seconds a step with sequences a and b alternating, each resubmitted once it is done, so one
    is always queued behind the other (each one's first barrier orders it after the other)."""
    def run(pairs: int) -> float:
        t0 = time.perf_counter()
        a.eval_async()
        b.eval_async()
        for _ in range(pairs):
            a.eval_await()
            a.eval_async()
            b.eval_await()
            b.eval_async()
        a.eval_await()
        b.eval_await()
        return (time.perf_counter() - t0) / (2 * pairs + 2)

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < warm_s:
        run(8)
    return run(n // 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--device", default="vulkan:0")
    ap.add_argument("-n", type=int, default=200, help="timed steps of each variant a round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    # a variant leaves dispatches out: stage flags would wait on workgroups that never come
    os.environ["GPT4ALL_CORE_VULKAN_FLAGS"] = "0"
    from gpt4all_core import models
    model = models.load(args.model, device=args.device, ngl=999)
    dec = model.decoder
    cache = model.new_cache(64)
    tok, pos = np.array([1], np.int32), np.array([16], np.int32)
    dec.forward(cache, tok, pos, pos, 17, 1)  # the params of a step at position 16, 17 slots seen
    table = variants(dec)
    recorded = {}
    for name, spec in table.items():
        seq, _ = record(dec, cache, *spec)
        recorded[name] = seq
    other = model.new_cache(64)
    dec.forward(other, tok, pos, pos, 17, 1)
    pair = (recorded["full"], record(dec, other, *table["full"])[0])
    empty_pair = (recorded["nothing, no copies"], record(dec, other, *table["nothing, no copies"])[0])
    one = one_dispatch(dec.ctx)

    def forward_step() -> float:
        t0 = time.perf_counter()
        dec.forward(cache, tok, pos, pos, 17, 1)
        return time.perf_counter() - t0

    def steps_of(seq):
        return lambda: statistics.median(_eval_times(seq, args.n, warm_s=0.3))

    # name: (seconds a step, the sequence whose dispatches it counts)
    timers = {name: (steps_of(seq), seq) for name, seq in recorded.items()}
    timers["two in flight"] = (lambda: two_in_flight(*pair, args.n), pair[0])
    timers["nothing, no copies, two in flight"] = (lambda: two_in_flight(*empty_pair, args.n), empty_pair[0])
    timers["one empty dispatch"] = (steps_of(one), one)
    timers["forward()"] = (lambda: statistics.median([forward_step() for _ in range(args.n)]), pair[0])
    times: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(args.rounds):
        for name, (timer, _) in timers.items():
            times[name].append(timer())
    full = statistics.median(times["full"])
    rows = {}
    for name, (_, seq) in timers.items():
        ms = statistics.median(times[name]) * 1e3
        rows[name] = {"ms": ms, "saved_ms": full * 1e3 - ms, "dispatches": seq.kept, "left_out": seq.dropped,
                      "rounds_ms": [t * 1e3 for t in times[name]]}
        print(f"{name:36s} {ms:7.3f} ms  saves {full * 1e3 - ms:6.3f} ms  ({seq.kept} dispatches, "
              f"{seq.dropped} left out)", flush=True)
    model.close()
    if args.json:
        args.json.write_text(json.dumps({"model": args.model.name, "n": args.n, "rounds": args.rounds,
                                         "variants": rows}, indent=1))


if __name__ == "__main__":
    main()
