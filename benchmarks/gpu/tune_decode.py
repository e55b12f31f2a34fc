"""Matrix-vector workgroup shapes chosen by what they do to decoding: one model file loaded once,
then for each $GPT4ALL_CORE_VULKAN_MV setting a fresh KV cache (so the decode step is recorded again
with those shapes) and tokens per second over `-n` decode steps after a warm-up, the settings
interleaved over `--rounds` rounds; a rate is one over the median step time, so a step the host
was late for does not count. (Timing one kernel shape on its own, as mv_sweep.py does, varied by
2x between identical runs on an H200.) $GPT4ALL_CORE_VULKAN_PARAMS settings are read when a
model loads: each value gets a model of its own, loaded once.

    python3 benchmarks/gpu/tune_decode.py MODEL.gguf --types q4_0 [--threads 32,64,128,256] [--rows 2,4,8]
        [--settings 'VAR=VALUE|...'] [-n 128] [--rounds 3] [--json F]
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

from settings import parse as parse_setting  # noqa: E402  (this folder)
from gpt4all_core.backend.vulkan import flags, prefetch, products, switches  # noqa: E402


SWITCHES = (products.MV_ENV, products.HALVES_ENV, products.AFFINE_ENV, products.KSORT_ENV,
            products.KTRANSPOSE_ENV, switches.FUSE_ENV, switches.PARAMS_ENV, switches.WAIT_ENV, switches.FENCE_ENV,
            switches.ATTENTION_SPLIT_ENV, flags.FLAGS_ENV, prefetch.PREFETCH_ENV)


def set_only(setting: str) -> None:
    """The environment of this setting ("" or VARIABLE=VALUE, several joined by "&"): the other
    variables of SWITCHES unset."""
    for name in SWITCHES:
        os.environ.pop(name, None)
    os.environ.update(parse_setting(setting))


def step_logits(model, setting: str, n: int = 6) -> np.ndarray:
    """The logits of n one-token steps into a fresh cache under this setting: what a setting must
    not change (beyond float rounding)."""
    set_only(setting)
    dec, cache = model.decoder, model.new_cache(n + 8)
    rows = [dec.forward(cache, np.array([100 + 7 * p], np.int32), np.array([p], np.int32), np.array([p], np.int32),
                        p + 1, 1)[0] for p in range(n)]
    return np.array(rows)


def decode_rate(model, setting: str, n: int, warm_s: float = 0.5) -> float:
    """Tokens per second of n one-token steps, the sequence recorded under this setting ("" or
    VARIABLE=VALUE, several joined by "&"; the other variables of SWITCHES unset)."""
    set_only(setting)
    dec, cache = model.decoder, model.new_cache(n + 64)
    tok = np.array([1], np.int32)

    def step(p: int) -> None:
        pos = np.array([p], np.int32)
        dec.forward(cache, tok, pos, pos, p + 1, 1)

    t0, p = time.perf_counter(), 0
    while time.perf_counter() - t0 < warm_s or p < 8:  # records, then warms the clocks
        step(p % 32)
        p += 1
    times = []
    for p in range(32, 32 + n):
        t0 = time.perf_counter()
        step(p)
        times.append(time.perf_counter() - t0)
    return 1.0 / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--types", default="q4_0", help="comma list: each type's shapes are tried in turn")
    ap.add_argument("--threads", default="32,64,128,256")
    ap.add_argument("--rows", default="2,4,8")
    ap.add_argument("--settings", default="", help="|-separated VARIABLE=VALUE settings instead of --types' "
                    "(like GPT4ALL_CORE_VULKAN_MV=q4_0=64x8x2|GPT4ALL_CORE_VULKAN_FUSE=0; & joins "
                    "variables set together)")
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    from gpt4all_core import models
    loaded: dict[str, object] = {}

    def model_for(setting: str):
        """The model loaded with this setting's $GPT4ALL_CORE_VULKAN_PARAMS (default: device)."""
        kind = parse_setting(setting).get(switches.PARAMS_ENV, "device")
        if kind not in loaded:
            os.environ[switches.PARAMS_ENV] = kind
            loaded[kind] = models.load(args.model, device="vulkan:0", ngl=999)
        return loaded[kind]

    settings = [""] + ([s for s in args.settings.split("|") if s] if args.settings else
                       [f"{products.MV_ENV}={t}={th}x{r}" for t in args.types.split(",")
                        for th in args.threads.split(",") for r in args.rows.split(",")])
    reference = step_logits(model_for(""), "")
    agree = {}  # each setting's logits against the default's: max |difference| over max |logit|
    for s in settings[1:]:
        agree[s] = float(np.abs(step_logits(model_for(s), s) - reference).max() / np.abs(reference).max())
        print(f"{args.model.name} {s}: logits within {agree[s]:.2e} of the default's", flush=True)
    rates: dict[str, list[float]] = {s: [] for s in settings}
    for _ in range(args.rounds):
        for s in settings:
            rates[s].append(decode_rate(model_for(s), s, args.n))
            print(f"{args.model.name} {s or 'default'}: {rates[s][-1]:.1f} t/s", flush=True)
    for model in loaded.values():
        model.close()
    base = statistics.median(rates[""])
    median = {s: statistics.median(r) for s, r in rates.items()}
    for s in settings[1:]:
        print(f"{s}: {median[s]:.1f} t/s, default {base:.1f} t/s ({median[s] / base:.3f}x)")
    best = {}
    alone = [s for s in settings[1:] if s.startswith(products.MV_ENV + "=") and "&" not in s]  # adoptable
    for t in sorted({s.split("=")[1] for s in alone}):
        mine = {s: median[s] for s in alone if s.startswith(f"{products.MV_ENV}={t}=")}
        top = max(mine, key=mine.get)
        best[t] = {"setting": top.split("=", 1)[1], "t_per_s": mine[top], "default_t_per_s": base}
        print(f"{t}: best {top} {mine[top]:.1f} t/s, default {base:.1f} t/s ({mine[top] / base:.3f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model.name, "n": args.n, "rounds": args.rounds,
                                               "rates": rates, "best": best, "logits_vs_default": agree},
                                              indent=1))


if __name__ == "__main__":
    main()
