"""Sentence embeddings per second against llama.cpp: all-MiniLM-L6-v2 (converted by us to F32, F16 and
Q8_0) embedding 256 sentences, gpt4all-core's Embed4All against llama.cpp (llama-cpp-python with
embedding=True) on the same file and threads, in one run.

    python benchmarks/embed.py [--threads 2] [-r 3] [--types f32,f16,q8_0] [--save]

Each (engine, file, repetition) runs in a fresh subprocess, engines alternating. Both get the same
256 seeded sentences (4 to 40 words) in one call, after one warm-up call of 8. Ours batches as
Embed4All does by default (GPT4All's n_ctx 2048: up to 2048 tokens per forward pass, the texts packed
without padding). llama.cpp puts one sequence per text into a batch of n_batch tokens and masks
attention across them, which costs it quadratically in n_batch; so it runs at GPT4All's 2048, at its
own default 512, and at 128 (every sentence here fits), and the ratio is taken to its best. All
return L2-normalized vectors; the script checks they agree (cosine) before timing counts. Timed by
wall clock around the embed call, tokenization and Python included. The machine's load average is
recorded with the results: the 2 cores are shared.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine_info import machine  # noqa: E402
sys.path.insert(0, str(HERE.parent / "tests" / "support"))
N_SENTENCES = 256
ENGINES = ("ours", "llama-2048", "llama-512", "llama-128")  # llama.cpp at three batch sizes

CHILD = r"""
import json, sys, time
import numpy as np
engine, path, threads, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
n_batch = int(engine.split("-")[1]) if "-" in engine else 2048
rng = np.random.default_rng(0)
words = ("the a of and to in is was for on that with as by at from his her they this river mountain music "
         "computer language model data quickly slowly bright green city history people market water light "
         "system question answer small large early late running builds writes reads").split()
texts = [" ".join(rng.choice(words, rng.integers(4, 41))).capitalize() + "." for _ in range(n)]
if engine == "ours":
    from gpt4all_core import Embed4All
    model = Embed4All(path, n_threads=threads)
    embed = lambda t: model.embed(t, prefix="")
    n_tokens = sum(len(model.model.tokenizer.encode(t, add_special=False)) + 2 for t in texts)
else:
    import llama_cpp
    llm = llama_cpp.Llama(model_path=path, embedding=True, n_ctx=n_batch, n_batch=n_batch, n_ubatch=n_batch,
                          n_threads=threads, n_threads_batch=threads, verbose=False)
    embed = lambda t: llm.embed(t, normalize=True)
    n_tokens = sum(len(llm.tokenize(t.encode())) for t in texts)
embed(texts[:8])
t0 = time.perf_counter()
vectors = embed(texts)
seconds = time.perf_counter() - t0
np.save(sys.argv[5], np.asarray(vectors, np.float32))
print(json.dumps({"seconds": seconds, "per_s": n / seconds, "tokens": n_tokens}))
"""


def model_files(types: list[str]) -> dict[str, Path]:
    from bert_files import MINILM_NAME, minilm_folder
    from model_files import DERIVED

    from gpt4all_core.convert import convert

    out = {}
    for kind in types:
        path = DERIVED / f"{MINILM_NAME}.{kind}.gguf"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            convert(minilm_folder(), path, kind, name=MINILM_NAME)
        out[kind] = path
    return out


def run(engine: str, path: Path, threads: int, vectors: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, engine, str(path), str(threads), str(N_SENTENCES),
                          str(vectors)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    import numpy as np

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-r", "--repeats", type=int, default=3)
    ap.add_argument("--types", default="f32,f16,q8_0")
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/embed-<commit>.json")
    args = ap.parse_args()
    info = machine()
    load_before = os.getloadavg()
    rows = []
    print(f"{'file':27s} {'ours emb/s':>10s} " + " ".join(f"{e + ' emb/s':>16s}" for e in ENGINES[1:])
          + f" {'ratio to best':>13s} {'min cosine':>10s}")
    tmp = HERE / "results" / "embed-vectors.tmp"
    for kind, path in model_files(args.types.split(",")).items():
        runs = {e: [] for e in ENGINES}
        for _ in range(args.repeats):
            for engine in runs:
                runs[engine].append(run(engine, path, args.threads, tmp.with_suffix(f".{engine}.npy")))
        vecs = {e: np.load(tmp.with_suffix(f".{e}.npy")) for e in runs}
        a = vecs["ours"]
        agree = min(float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())
                    for e, b in vecs.items() if e != "ours")
        for e in runs:
            tmp.with_suffix(f".{e}.npy").unlink()
        if agree < 0.998:
            raise SystemExit(f"{path.name}: the engines disagree (min cosine {agree:.6f}); not timing that")
        med = {e: statistics.median(r["per_s"] for r in rs) for e, rs in runs.items()}
        best = max(ENGINES[1:], key=lambda e: med[e])
        row = {"type": kind, "file": path.name, "size_mb": round(path.stat().st_size / 1e6, 1), "runs": runs,
               "median_per_s": med, "best_llama": best, "ratio_to_best_llama": med["ours"] / med[best],
               "ratio_to_llama_2048": med["ours"] / med["llama-2048"], "min_cosine": agree,
               "tokens": runs["ours"][0]["tokens"]}
        rows.append(row)
        print(f"{path.name:27s} {med['ours']:10.1f} " + " ".join(f"{med[e]:16.1f}" for e in ENGINES[1:])
              + f" {row['ratio_to_best_llama']:13.2f} {agree:10.6f}", flush=True)
    load = {"before": load_before, "after": os.getloadavg()}
    print(f"load average before {load_before[0]:.2f}, after {load['after'][0]:.2f} (1 min)")
    if args.save:
        out = HERE / "results" / f"embed-{info['commit']}.json"
        out.write_text(json.dumps({"machine": info, "threads": args.threads, "repeats": args.repeats,
                                   "sentences": N_SENTENCES, "load_average": load, "results": rows}, indent=2))
        print(f"saved {out}")


if __name__ == "__main__":
    main()
