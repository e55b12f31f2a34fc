"""End to end against llama.cpp: prompt processing (pp512) and generation (tg128) tokens/s and peak
RSS, gpt4all-core and llama.cpp (llama-cpp-python) on the same files and threads, in one run.

    python benchmarks/e2e.py [--threads 2] [-r 3] [--models smollm2-q4_1,...] [--save]

Each (engine, model, repetition) runs in a fresh subprocess, engines alternating, so neither
warms the page cache or the CPU for the other and each reports its own peak RSS. pp512 evaluates
512 random tokens in one batch; tg128 then feeds 128 tokens one at a time (each a full forward
pass with the cache growing from 512). Both are timed as wall time around the calls, Python
included (llama-cpp-python's Llama.eval; its C-side perf counters are off in its contexts).
Models: SmolLM2-135M (Q4_1 as shipped; Q8_0 and F16 requantized by the gguf package), Gemma 3
270M (Q4_K_M as shipped: a 262k-token output projection, sliding-window attention) and a
~1.1B random-weight llama (TinyLlama's shape) in Q4_0, Q8_0 and a Q4_K_M-like mix (Q4_K, with
Q6_K for attn_v, ffn_down and output, as llama-quantize's Q4_K_M does for half of them) written
by our own quantizers, since llama-quantize is not part of llama-cpp-python.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine_info import machine  # noqa: E402
sys.path.insert(0, str(HERE.parent / "tests" / "support"))

BIG = {"n_block": 22, "n_embd": 2048, "n_head": 32, "n_head_kv": 4, "n_ff": 5632}  # TinyLlama-1.1B

CHILD = r"""
import json, resource, sys, time
import numpy as np
engine, path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
pp = [int(t) for t in rng.integers(100, 30000, 512)]
tg = [int(t) for t in rng.integers(100, 30000, 128)]
if engine == "ours":
    from gpt4all_core import models
    m = models.load(path)
    cache = m.new_cache(1024)
    ar = np.arange(512, dtype=np.int32)
    t0 = time.perf_counter()
    m.decoder.forward(cache, np.array(pp, np.int32), ar, ar, 512, 1, threads)
    t1 = time.perf_counter()
    for i, t in enumerate(tg):
        p = np.array([512 + i], np.int32)
        m.decoder.forward(cache, np.array([t], np.int32), p, p, 513 + i, 1, threads)
    t2 = time.perf_counter()
    pp_s, tg_s = t1 - t0, t2 - t1
else:
    import llama_cpp
    llm = llama_cpp.Llama(model_path=path, n_ctx=1024, n_batch=512, n_ubatch=512, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    t0 = time.perf_counter()
    llm.eval(pp)
    t1 = time.perf_counter()
    for t in tg:
        llm.eval([t])
    t2 = time.perf_counter()
    pp_s, tg_s = t1 - t0, t2 - t1
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"pp512": 512 / pp_s, "tg128": 128 / tg_s, "peak_rss": rss}))
"""


def model_files() -> dict[str, Path]:
    from fixture_paths import TEST_DATA
    from model_files import SMOLLM2, random_model, requantized_smollm2
    return {
        "smollm2-q4_1": lambda: SMOLLM2,
        "gemma3-270m-q4_k_m": lambda: TEST_DATA / "gemma-3-270m-q4_k_m.gguf",
        "smollm2-q8_0": lambda: requantized_smollm2("Q8_0"),
        "smollm2-f16": lambda: requantized_smollm2("F16"),
        "llama1b-q4_0": lambda: random_model("llama", qtype="Q4_0", **BIG),
        "llama1b-q8_0": lambda: random_model("llama", qtype="Q8_0", **BIG),
        "llama1b-q4_k_m": lambda: random_model("llama", qtype="Q4_K_M", **BIG),
    }


def run(engine: str, path: Path, threads: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, engine, str(path), str(threads)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-r", "--repeats", type=int, default=3)
    ap.add_argument("--models", default=None, help="comma-separated subset of: " + ", ".join(model_files()))
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/e2e-<commit>.json")
    args = ap.parse_args()
    files = model_files()
    chosen = args.models.split(",") if args.models else list(files)
    info = machine()
    rows = []
    print(f"{'model':16s} {'ours pp512':>10s} {'llama pp512':>11s} {'ratio':>6s}   {'ours tg128':>10s} "
          f"{'llama tg128':>11s} {'ratio':>6s}   {'RSS ours/llama MB':>18s}")
    for name in chosen:
        path = files[name]()
        runs = {"ours": [], "llama.cpp": []}
        for _ in range(args.repeats):
            for engine in runs:
                runs[engine].append(run("ours" if engine == "ours" else "llama", path, args.threads))
        med = {e: {k: statistics.median(r[k] for r in rs) for k in ("pp512", "tg128", "peak_rss")}
               for e, rs in runs.items()}
        row = {"model": name, "file": path.name, "size_mb": round(path.stat().st_size / 1e6, 1), "runs": runs,
               "median": med, "pp512_ratio": med["ours"]["pp512"] / med["llama.cpp"]["pp512"],
               "tg128_ratio": med["ours"]["tg128"] / med["llama.cpp"]["tg128"]}
        rows.append(row)
        o, ll = med["ours"], med["llama.cpp"]
        print(f"{name:16s} {o['pp512']:10.1f} {ll['pp512']:11.1f} {row['pp512_ratio']:6.2f}   {o['tg128']:10.1f} "
              f"{ll['tg128']:11.1f} {row['tg128_ratio']:6.2f}   {o['peak_rss'] / 1e6:8.0f}/{ll['peak_rss'] / 1e6:.0f}",
              flush=True)
    if args.save:
        out = HERE / "results" / f"e2e-{info['commit']}.json"
        out.write_text(json.dumps({"machine": info, "threads": args.threads, "repeats": args.repeats,
                                   "results": rows}, indent=2))
        print(f"saved {out}")


if __name__ == "__main__":
    main()
