"""llama.cpp on the same files and settings: its `llama-bench` when on PATH (JSON mode), else
llama-cpp-python in a child process running the same tests as ours (pp: the prompt in batches into
an empty cache; tg: tokens one at a time from an empty cache; a warm-up, then the repetitions)."""
from __future__ import annotations

import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from gpt4all_core.bench.devices import BenchError

ENGINES = ("llama.cpp",)

CHILD = r"""
import json, sys, time
import numpy as np
import llama_cpp
path, threads, n_prompt, n_gen, repeats, n_batch = sys.argv[1], *map(int, sys.argv[2:7])
llm = llama_cpp.Llama(model_path=path, n_ctx=max(n_prompt, n_gen, 16), n_batch=n_batch, n_ubatch=n_batch,
                      n_threads=threads, n_threads_batch=threads, verbose=False)
rng = np.random.default_rng(0)
pp = [int(t) for t in rng.integers(0, llm.n_vocab(), n_prompt)]
tg = [int(t) for t in rng.integers(0, llm.n_vocab(), n_gen)]
def prompt():
    llm.reset()
    llm.eval(pp)
def generate():
    llm.reset()
    for t in tg:
        llm.eval([t])
out = {}
for name, n, fn in ((f"pp{n_prompt}", n_prompt, prompt), (f"tg{n_gen}", n_gen, generate)):
    if not n:
        continue
    fn()
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t0)
    out[name] = [n / s for s in seconds]
print(json.dumps({"version": llama_cpp.__version__, "samples_ts": out}))
"""


def which_engine() -> str:
    """"llama-bench" if it is on PATH, else "llama-cpp-python" if importable; BenchError if neither."""
    if shutil.which("llama-bench"):
        return "llama-bench"
    if importlib.util.find_spec("llama_cpp") is not None:
        return "llama-cpp-python"
    raise BenchError("--compare llama.cpp: neither a `llama-bench` executable on PATH nor the llama-cpp-python "
                     "package (pip install llama-cpp-python) was found")


def _key(path: str, threads: int, test: str) -> tuple:
    return (str(Path(path).resolve()), int(threads), test)


def _llama_bench(paths, threads, n_prompt, n_gen, repeats, n_batch) -> tuple[str, dict]:
    cmd = ["llama-bench", "-o", "json", "-p", str(n_prompt), "-n", str(n_gen), "-r", str(repeats),
           "-t", ",".join(map(str, threads)), "-b", str(n_batch), "-ub", str(n_batch), "-ngl", "0"]
    for p in paths:
        cmd += ["-m", str(p)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise BenchError(f"llama-bench failed (exit {out.returncode}): {out.stderr.strip()[-500:]}")
    results = {}
    build = ""
    for r in json.loads(out.stdout):
        test = f"pp{r['n_prompt']}" if r.get("n_prompt") else f"tg{r['n_gen']}"
        build = r.get("build_commit", build)
        results[_key(r["model_filename"], r["n_threads"], test)] = (r["avg_ts"], r["stddev_ts"])
    return f"llama-bench {build}".strip(), results


def _llama_cpp_python(paths, threads, n_prompt, n_gen, repeats, n_batch) -> tuple[str, dict]:
    results, version = {}, "?"
    for p in paths:
        for t in threads:
            out = subprocess.run([sys.executable, "-c", CHILD, str(p), str(t), str(n_prompt), str(n_gen),
                                  str(repeats), str(n_batch)], capture_output=True, text=True)
            if out.returncode:
                raise BenchError(f"llama-cpp-python failed on {p} (exit {out.returncode}): "
                                 f"{out.stderr.strip()[-500:]}")
            got = json.loads(out.stdout.strip().splitlines()[-1])
            version = got["version"]
            for test, ts in got["samples_ts"].items():
                results[_key(p, t, test)] = (statistics.mean(ts), statistics.stdev(ts) if len(ts) > 1 else 0.0)
    return f"llama-cpp-python {version}", results


def compare(rows: list[dict], paths: list[str], threads: list[int], n_prompt: int, n_gen: int, repeats: int,
            n_batch: int, engine: str | None = None) -> str:
    """Adds compare_engine, compare_avg_ts, compare_stddev_ts and ratio (ours / theirs) to each row;
    returns the engine's description ("llama-bench <build>" or "llama-cpp-python <version>")."""
    engine = engine or which_engine()
    run = _llama_bench if engine == "llama-bench" else _llama_cpp_python
    described, results = run(paths, threads, n_prompt, n_gen, repeats, n_batch)
    for row in rows:
        theirs = results.get(_key(row["model_filename"], row["n_threads"], row["test"]))
        row["compare_engine"] = described
        row["compare_avg_ts"], row["compare_stddev_ts"] = theirs if theirs else (None, None)
        row["ratio"] = row["avg_ts"] / theirs[0] if theirs and theirs[0] else None
    return described
