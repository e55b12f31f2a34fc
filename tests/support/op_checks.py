"""Shared by the CPU op tests: seeded float32 inputs and element-wise error checks."""
from __future__ import annotations

import zlib

import numpy as np
from hypothesis import settings

from gpt4all_core.backend import cpu_kernels as ck

EPS = float(np.finfo(np.float32).eps)  # 1.19e-7
HYPO = settings(derandomize=True, deadline=None, max_examples=200)


def seed_of(*args):
    """A seed from the test's parameters, the same in every run (str hashes are salted)."""
    return zlib.crc32(repr(args).encode())


def at_level(level, fn):
    before = ck.simd_level()
    ck.select_simd(level)
    try:
        return fn()
    finally:
        ck.select_simd(before)


def randn(rng, *shape, scale=1.0, offset=0.0):
    """float32 normals, nudged away from exact zeros."""
    x = rng.standard_normal(shape) * scale + offset
    x[x == 0] = 0.5
    return x.astype(np.float32)


def check(got, ref, bound, what=""):
    """|got - ref| <= bound element-wise (bound broadcasts), with the worst offender in the message."""
    err = np.abs(got.astype(np.float64) - ref)
    bound = np.broadcast_to(bound, err.shape)
    bad = ~(err <= bound)
    assert not bad.any(), (f"{what}: {bad.sum()} of {err.size} beyond the bound; worst err "
                           f"{err[bad].max():.3g} vs bound {bound[bad][np.argmax(err[bad])]:.3g}")


def ref_softmax(x, mask, scale):
    s = x.astype(np.float64) * scale + (0 if mask is None else mask.astype(np.float64))
    m = s.max(-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(m), m, 0))
    tot = e.sum(-1, keepdims=True)
    return np.divide(e, tot, out=np.zeros_like(e), where=tot > 0)


def attn_bound(q, k, v, scale):
    """Each float32 score q.k * scale is off by at most (d/8 + 4) eps sum_i |q_i k_i| scale (lanes of
    8 summing d/8 products each), which moves every softmax weight by twice that relatively; the
    output, a convex mix of v rows, moves by that times max|v|, plus the float accumulation of up
    to n_kv rows through the online rescaling (n_kv eps |v|) and a few roundings."""
    qa, ka = np.abs(q.astype(np.float64)), np.abs(k.astype(np.float64))
    n_kv, n_head_kv, d = k.shape
    group = q.shape[1] // n_head_kv
    smax = max((qa[:, h] @ ka[:, h // group].T).max(initial=0) for h in range(q.shape[1])) * abs(scale)
    return (2 * (d / 8 + 4) * smax + n_kv + 16) * EPS * np.abs(v.astype(np.float64)).max(initial=0)
