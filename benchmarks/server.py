"""OpenAI-compatible servers under concurrent load: aggregate generated tokens/s and time to first
token at 1, 4, 8 and 16 streaming clients, `gpt4all-core serve` against llama-cpp-python's server
(`python -m llama_cpp.server`, llama.cpp underneath) on the same model and threads, in one run.

    python benchmarks/server.py [--threads 2] [--clients 1,4,8,16] [--max-tokens 64] [--save]

Each server runs as its own process on 127.0.0.1, one at a time (they would share the cores).
Ours gets --parallel 16 (continuous batching: every client's request decodes in the same forward
passes); llama-cpp-python's server has one context and serves requests one after another. Every
client streams /v1/completions requests (greedy, max_tokens each, prompts that do not end soon)
one after another; a phase is timed from its first request to its last byte. Tokens are counted
as streamed chunks with text (one per token in both servers; a character split over tokens
arrives whole, so the count is a hair low for both alike). TTFT: request sent to first text chunk.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

MODEL = Path(os.environ.get("GPT4ALL_MODEL_DIR", Path.home() / ".cache" / "gpt4all")) / "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPTS = ["Once upon a time, in a small village by the sea, there lived", "The history of the Roman Empire begins",
           "Here is a long list of fruits: apple, banana,", "Dear diary, today I woke up early and",
           "The recipe for a good bread starts with", "In the year 2150, humanity finally",
           "The rules of chess are simple: each player", "My grandfather used to tell me stories about"]


def start(engine: str, port: int, threads: int, max_clients: int) -> subprocess.Popen:
    if engine == "ours":
        cmd = [sys.executable, "-m", "gpt4all_core.cli", "serve", str(MODEL), "--port", str(port), "--threads",
               str(threads), "--parallel", str(max_clients), "--n-ctx", "256", "--log-level", "warning"]
    else:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(MODEL), "--model_alias", MODEL.name,
               "--port", str(port), "--host", "127.0.0.1", "--n_ctx", "2048", "--n_threads", str(threads),
               "--n_threads_batch", str(threads), "--interrupt_requests", "False", "--verbose", "False"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
        if proc.poll() is not None:
            break
    proc.terminate()
    raise RuntimeError(f"{engine} server did not start ({' '.join(cmd)})")


async def one(http: httpx.AsyncClient, url: str, prompt: str, max_tokens: int) -> tuple[float | None, int]:
    body = {"model": MODEL.name, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    t0, first, n = time.perf_counter(), None, 0
    async with http.stream("POST", url + "/v1/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if any(c.get("text") for c in chunk.get("choices", [])):
                n += 1
                if first is None:
                    first = time.perf_counter() - t0
    return first, n


async def phase(url: str, clients: int, requests_each: int, max_tokens: int) -> dict:
    ttft, tokens = [], 0
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600), limits=limits) as http:
        async def client(c: int):
            nonlocal tokens
            for k in range(requests_each):
                first, n = await one(http, url, PROMPTS[(c + k) % len(PROMPTS)], max_tokens)
                tokens += n
                if first is not None:
                    ttft.append(first)
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(clients)))
        wall = time.perf_counter() - t0
    ttft.sort()
    return {"clients": clients, "requests": clients * requests_each, "tokens": tokens, "seconds": wall,
            "tokens_per_s": tokens / wall, "ttft_median_s": statistics.median(ttft),
            "ttft_p90_s": ttft[min(len(ttft) - 1, int(0.9 * len(ttft)))]}


def machine() -> dict:
    from e2e import machine as e2e_machine
    return {**e2e_machine(), "loadavg_at_start": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clients", default="1,4,8,16")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--requests", type=int, default=0, help="requests per client (default: 4 at 1 client, "
                                                             "3 at up to 4, else 2)")
    ap.add_argument("--engines", default="ours,llama.cpp")
    ap.add_argument("--port", type=int, default=18991)
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/server-<commit>.json")
    args = ap.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    info = machine()
    results = {}
    for engine in args.engines.split(","):
        proc = start(engine, args.port, args.threads, max(levels))
        url = f"http://127.0.0.1:{args.port}"
        try:
            asyncio.run(phase(url, 1, 1, 8))  # warm-up: page in the weights
            rows = []
            for c in levels:
                each = args.requests or (4 if c == 1 else 3 if c <= 4 else 2)
                row = asyncio.run(phase(url, c, each, args.max_tokens))
                rows.append(row)
                print(f"{engine:10s} {c:3d} clients: {row['tokens_per_s']:7.1f} tok/s aggregate, TTFT median "
                      f"{row['ttft_median_s'] * 1000:7.0f} ms, p90 {row['ttft_p90_s'] * 1000:7.0f} ms "
                      f"({row['tokens']} tokens in {row['seconds']:.1f} s)", flush=True)
            results[engine] = rows
        finally:
            proc.terminate()
            proc.wait(30)
    summary = {}
    if "ours" in results:
        by = {r["clients"]: r for r in results["ours"]}
        if 1 in by and 8 in by:
            summary["ours_8_over_1"] = by[8]["tokens_per_s"] / by[1]["tokens_per_s"]
        if "llama.cpp" in results:
            theirs = {r["clients"]: r for r in results["llama.cpp"]}
            summary["ours_over_llama_cpp"] = {c: by[c]["tokens_per_s"] / theirs[c]["tokens_per_s"]
                                              for c in by if c in theirs}
    print(json.dumps(summary))
    if args.save:
        out = HERE / "results" / f"server-{info['commit']}.json"
        out.write_text(json.dumps({"machine": info, "threads": args.threads, "max_tokens": args.max_tokens,
                                   "results": results, "summary": summary}, indent=2))
        print(f"saved {out}")


if __name__ == "__main__":
    main()
