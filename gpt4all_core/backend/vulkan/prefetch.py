"""Weights pulled into L2 ahead of the products that read them ($GPT4ALL_CORE_VULKAN_PREFETCH,
off by default: an A/B switch until a GPU says it pays).

A one-token product reads a few MB of weights behind a barrier: too little to keep an H100's
memory busy while its workgroups ramp up and drain (gpu/ablate_decode.py: the step's products ran
1.4x as fast with no barriers between them). So at the end of each stage (what the decoder's
ordering puts between two barriers), a `prefetch` dispatch with no barrier before it reads the
next stages' weights and keeps nothing; it runs beside the stage's drain, and the products after
the barrier find their weights in L2. What is prefetched but not yet read stays under a budget
(the setting, in MiB) so that it is still in L2 when its product comes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

PREFETCH_ENV = "GPT4ALL_CORE_VULKAN_PREFETCH"
MAX_BUDGET_MIB = 512  # one dispatch covers up to 65,535 x 1,024 uvec4s (1 GiB)
SINKS = 8       # prefetch dispatches a stage at most, each writing (never, in practice) a sink of its own
LOOKAHEAD = 2   # stages ahead a prefetch may serve


def budget_bytes() -> int:
    """$PREFETCH_ENV: MiB of weights prefetched and not yet read, at most; 0 or unset: off."""
    value = os.environ.get(PREFETCH_ENV, "").strip() or "0"
    if not value.isdigit() or int(value) > MAX_BUDGET_MIB:
        raise ValueError(f"${PREFETCH_ENV}: {value!r} is not a whole number of MiB from 0 to {MAX_BUDGET_MIB}")
    return int(value) << 20


@dataclass(frozen=True)
class Chunk:
    """Prefetch uvec4s [offset4, offset4 + n4) of weights into sink number `sink`."""
    weights: object
    offset4: int
    n4: int
    sink: int


def plan(barriers: list[bool], weights: list, n_words, budget: int) -> dict[int, list[Chunk]]:
    """{i: chunks to record right after op i}. barriers[i]: op i waits for everything before it
    (it starts a stage); weights[i]: the weight tensor op i reads, or None; n_words(tensor): its
    length in uint32 words. Op i's chunks read weights of the next LOOKAHEAD stages, in the order
    the ops read them, while the bytes prefetched for later stages stay within budget; the first
    stage gets none (nothing runs before it)."""
    if budget <= 0 or not barriers:
        return {}
    stage_of, stage = [], -1
    for b in barriers:
        stage += bool(b) or stage < 0
        stage_of.append(stage)
    last_op = {s: i for i, s in enumerate(stage_of)}  # each stage's last op
    queue = []  # [stage, weights, next uvec4, end uvec4] in reading order, each tensor once a stage
    for i, w in enumerate(weights):
        if w is not None and not any(q[1] is w and q[0] == stage_of[i] for q in queue):
            queue.append([stage_of[i], w, 0, n_words(w) // 4])
    chunks: dict[int, list[Chunk]] = {}
    ahead = 0  # bytes prefetched for stages not yet run
    for s in range(stage_of[-1] + 1):
        ahead -= sum(16 * q[2] for q in queue if q[0] == s)  # what stage s reads of its prefetched bytes
        queue = [q for q in queue if q[0] != s]
        out = chunks.setdefault(last_op[s], [])
        for q in queue:
            if q[0] > s + LOOKAHEAD or len(out) == SINKS or ahead >= budget:
                break
            n4 = min(q[3] - q[2], (budget - ahead) // 16)
            if n4 <= 0:
                continue
            out.append(Chunk(q[1], q[2], n4, len(out)))
            q[2] += n4
            ahead += 16 * n4
        if not out:
            del chunks[last_op[s]]
    return chunks
