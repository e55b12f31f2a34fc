"""Stage flags: a decode step's dispatches ordered by counters instead of pipeline barriers.

Behind a barrier, every workgroup of a product starts only once the last workgroup of the stage
before has finished; on a decode-sized matrix the ramp-up and the drain are a large part of the
product's time (an H100 ran a 6.7B Q4_0 step in 4.42 ms with its barriers and 3.27 ms without).
The _flags forms of the shaders (shaders/flags.glsl) wait instead: each workgroup loads its
weights, then polls its stage's counter until the stage before has counted all of its
workgroups, and counts itself when done. What passes between stages is read and written through
coherent declarations; the counters are words of the parameter buffer that the host zeroes
before each pass.

A stage is what the decoder's ordering puts between two barriers. A boundary becomes a wait when
the dispatch after it has a _flags form and every dispatch of the stage before signalled; otherwise
the barrier stays (the first dispatch, the embedding lookup, norms and float products, prompts). A wait that never ends (a
device that does not run a later dispatch's workgroups beside an earlier one's) gives up after a
bounded number of polls and is counted, and the decoder raises an error naming this setting.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

from gpt4all_core.backend.vulkan import products
from gpt4all_core.backend.vulkan.context import Caps, Dispatch

# "1": decode steps (one token) ordered by stage flags where their shaders have the form; "0"
# (default): barriers. A/B runs only: an H200 decoded a 6.7B Q4_0 file at 0.60x with flags (f4d5e82).
# Read when a sequence is recorded
FLAGS_ENV = "GPT4ALL_CORE_VULKAN_FLAGS"
SPEC_ID = 20  # WAIT_AT, WAIT_FOR, SIGNAL_AT, TIMEOUT_AT at ids 20 to 23; the mv forms' XS at 24

_MV_TYPES = ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0")  # mul_mv_32.comp's
_K_TYPES = ("q2_k", "q3_k", "q4_k", "q5_k", "q6_k")    # k_mul_mv.comp's
_MV_FORMS = ("", "_norm", "_norm_glu", "_norm_rope")
# the shaders built with -DFLAGS as <name>_flags (shaders/meson.build)
FLAGGED = frozenset({f"mul_mv_{t}{f}" for t in _MV_TYPES + _K_TYPES for f in _MV_FORMS} | {"attention_split_merged"})


def setting() -> bool:
    """$FLAGS_ENV: True for "1", False for "0" or unset; anything else is refused by name."""
    value = os.environ.get(FLAGS_ENV, "0").strip() or "0"
    if value not in ("0", "1"):
        raise ValueError(f"${FLAGS_ENV}: {value!r} is not '0' or '1'")
    return value == "1"


def mv_shared_bytes(shader: str, threads: int, rows: int, n_in: int) -> int:
    """Shared memory of a mv _flags form: X, the partial sums, the fused forms' totals."""
    k_quant = shader.split("_norm")[0].removeprefix("mul_mv_") in _K_TYPES
    partial = (rows + 1) * threads if k_quant else threads + 128
    return 4 * n_in + 4 * partial + 4 * (rows + 1)


def capable(caps: Caps, d: Dispatch, n_in: int | None = None) -> bool:
    """Whether d has a _flags form that fits here: mv products (of the 32-element quants and the
    K-quants) of one column whose X (n_in floats, whole blocks) fits in shared memory, and the
    merged split attention."""
    if d.shader not in FLAGGED:
        return False
    if d.shader.startswith("mul_mv_"):
        threads, rows, cols = d.spec[:3]
        return cols == 1 and n_in is not None and n_in % 32 == 0 and \
            mv_shared_bytes(d.shader, threads, rows, n_in) <= caps.max_shared_bytes
    return True


def flagged(d: Dispatch, n_in: int | None, wait_at: int, wait_for: int, signal_at: int, timeout_at: int) -> Dispatch:
    """d's _flags form: waiting on word wait_at (0: not at all) until it counts wait_for
    workgroups, counting its own in signal_at (0: not at all)."""
    if len(d.spec) > SPEC_ID:
        raise ValueError(f"{d.shader}: specialization constants past id {SPEC_ID - 1}")
    spec = tuple(d.spec)
    mv = d.shader.startswith("mul_mv_")
    if mv:  # ids a mv spec leaves out (at their defaults) spelt out: zero is not always the default
        spec += ((0, 0) + products.MV_SPEC_DEFAULTS)[len(spec) - 3:]
    spec += (0,) * (SPEC_ID - len(spec)) + (wait_at, wait_for, signal_at, timeout_at)
    if mv:
        spec += (n_in // 4,)
    return replace(d, shader=d.shader + "_flags", spec=spec)


@dataclass
class _Stage:
    word: int                       # the word its workgroups count themselves in (0: none left)
    wait: tuple[int, int] | None    # (word, workgroups) its dispatches wait on; None: after a barrier
    total: int = 0                  # workgroups of its dispatches so far
    all_signal: bool = True         # every dispatch so far counts itself


class Stages:
    """The stages of one recorded sequence. Words [base, base + n_words) of the parameter buffer
    are the flags: base counts waits that gave up, each later word one stage's workgroups."""

    def __init__(self, base: int, n_words: int):
        self.base, self.n_words = base, n_words
        self.stage: _Stage | None = None
        self.opened = 0
        self.waits = 0                      # boundaries that became waits instead of barriers
        self.expected: dict[int, int] = {}  # word: workgroups that count themselves there

    @property
    def waiting(self) -> bool:
        """Whether the current stage was opened by a wait (so every dispatch in it must wait)."""
        return self.stage is not None and self.stage.wait is not None

    def place(self, d: Dispatch, n_in: int | None, can: bool, boundary: bool) -> tuple[Dispatch, bool]:
        """(the dispatch to record, whether it keeps a barrier) for d, which the ordering put
        after a boundary or not; can: capable(d)."""
        if boundary:
            prev, wait = self.stage, None
            if can and prev is not None and prev.all_signal and prev.total:
                wait = (prev.word, prev.total)
                self.waits += 1
            self.opened += 1
            word = self.base + self.opened if self.opened < self.n_words else 0
            self.stage = _Stage(word, wait)
        st = self.stage
        if not can:
            st.all_signal = False
            return d, boundary
        if not st.word:
            st.all_signal = False
        wait_at, wait_for = st.wait or (0, 0)
        out = flagged(d, n_in, wait_at, wait_for, st.word, self.base)
        if st.word:
            st.total += d.groups[0] * d.groups[1] * d.groups[2]
            self.expected[st.word] = st.total
        return out, boundary and st.wait is None
