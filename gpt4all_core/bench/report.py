"""Model and kernel results as Markdown, JSON or CSV; --save into benchmarks/results/."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from gpt4all_core.bench.machine import REPO

# llama-bench's CSV fields where they exist (same names and units), then ours
CSV_FIELDS = ["build_commit", "cpu_info", "device", "device_name", "driver", "backends", "simd", "model_filename",
              "model_type", "model_size", "model_n_params", "quant_type", "n_batch", "n_threads", "n_gpu_layers",
              "type_k", "type_v", "n_prompt", "n_gen", "test", "test_time", "avg_ns", "stddev_ns", "avg_ts",
              "stddev_ts"]
COMPARE_FIELDS = ["compare_engine", "compare_avg_ts", "compare_stddev_ts", "ratio"]
KERNEL_CSV_FIELDS = ["type", "n_threads", "m", "k", "weight_bytes", "matvec_GB_per_s", "read_bandwidth_GB_per_s",
                     "of_bandwidth", "of_best_bandwidth", "matmul_n", "matmul_threads", "matmul_GFLOP_per_s"]


def _bytes(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.2f} MiB"


def _params(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.2f} M"


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w)  # noqa: E731
                                          for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    sep = "| " + " | ".join(("-" * (w - 1) + ":") if i in right else "-" * w for i, w in enumerate(widths)) + " |"
    return "\n".join([line(header), sep] + [line(r) for r in rows])


def model_markdown(result: dict) -> str:
    rows = result["results"]
    compared = any("compare_engine" in r for r in rows)
    header = ["model", "size", "params", "device", "backend", "simd", "threads", "test", "t/s"]
    if compared:
        header += ["llama.cpp t/s", "ratio"]
    body = []
    for r in rows:
        cells = [r["model_type"], _bytes(r["model_size"]), _params(r["model_n_params"]), r["device"],
                 r["backends"], r["simd"], str(r["n_threads"]), r["test"], f"{r['avg_ts']:.2f} ± {r['stddev_ts']:.2f}"]
        if compared:
            theirs = r.get("compare_avg_ts")
            cells += [f"{theirs:.2f} ± {r['compare_stddev_ts']:.2f}" if theirs else "n/a",
                      f"{r['ratio']:.2f}" if r.get("ratio") else "n/a"]
        body.append(cells)
    text = _table(header, body, right={1, 2, 6, 8, 9, 10})
    m = result["machine"]
    text += f"\n\n{m['cpu']}, {m['simd']}; gpt4all-core {m['commit']}"
    gpus = {r["device"]: f"{r['device']}: {r['device_name']}, driver {r.get('driver') or '?'}"
            for r in rows if r["device"] != "cpu"}
    if gpus:
        text += "\n" + "; ".join(gpus.values())
    if compared:
        text += f"; compared with {rows[0]['compare_engine']} on the same files and settings"
    return text


def kernels_markdown(result: dict) -> str:
    threads = list(result["read_bandwidth_GB_per_s"])
    header = ["type"] + [f"matvec {t}t GB/s" for t in threads] + [f"of read bandwidth ({threads[-1]}t)"]
    header += ["matmul GFLOP/s"]
    body = []
    for r in result["rows"]:
        body.append([r["type"]] + [f"{r['matvec'][t]['GB_per_s']:.1f}" for t in threads]
                    + [f"{100 * r['matvec'][threads[-1]]['of_bandwidth']:.0f}%", f"{r['matmul']['GFLOP_per_s']:.1f}"])
    text = _table(header, body, right=set(range(1, len(header))))
    bw = ", ".join(f"{t} thread{'s' * (int(t) > 1)} {v:.1f} GB/s" for t, v in result["read_bandwidth_GB_per_s"].items())
    m = result["machine"]
    text += f"\n\nread bandwidth (median): {bw}"
    if result.get("compute_probe"):
        p = result["compute_probe"]
        text += (f"\ncompute probe: F32 {p['m']}x{p['k']} by {p['n']} in cache, {p['threads']} threads: "
                 f"{p['GFLOP_per_s']:.1f} GFLOP/s")
    text += f"\n{m['cpu']}, {m['simd']}; gpt4all-core {m['commit']}"
    return text


def _csv(fields: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().rstrip("\n")


VULKAN_KERNEL_CSV_FIELDS = ["type", "device", "device_name", "m", "k", "weight_bytes", "matvec_GB_per_s",
                            "copy_bandwidth_GB_per_s", "of_copy_bandwidth", "chain_GB_per_s", "matmul_n",
                            "matmul_GFLOP_per_s"]


def is_vulkan(result: dict) -> bool:
    return result.get("device", "cpu") != "cpu"


def vulkan_kernels_markdown(result: dict) -> str:
    header = ["type", "matvec GB/s", "of copy bandwidth", "k x k chain GB/s", "matmul GFLOP/s"]
    rows = [[r["type"], f"{r['matvec']['GB_per_s']:.1f}", f"{100 * r['matvec']['of_copy_bandwidth']:.0f}%",
             f"{r['matvec_chain']['GB_per_s']:.1f}", f"{r['matmul']['GFLOP_per_s']:.1f}"] for r in result["rows"]]
    return (_table(header, rows, {1, 2, 3, 4}) + f"\n\n{result['device_name']} ({result['device']}): copy bandwidth "
            f"(read + write, median) {result['copy_bandwidth_GB_per_s']:.1f} GB/s")


def vulkan_kernel_rows(result: dict) -> list[dict]:
    return [{"type": r["type"], "device": result["device"], "device_name": result["device_name"], "m": r["m"],
             "k": r["k"], "weight_bytes": r["weight_bytes"], "matvec_GB_per_s": r["matvec"]["GB_per_s"],
             "copy_bandwidth_GB_per_s": result["copy_bandwidth_GB_per_s"],
             "of_copy_bandwidth": r["matvec"]["of_copy_bandwidth"], "chain_GB_per_s": r["matvec_chain"]["GB_per_s"],
             "matmul_n": r["matmul"]["n"], "matmul_GFLOP_per_s": r["matmul"]["GFLOP_per_s"]} for r in result["rows"]]


def kernel_rows(result: dict) -> list[dict]:
    out = []
    for r in result["rows"]:
        for t, mv in r["matvec"].items():
            out.append({"type": r["type"], "n_threads": int(t), "m": r["m"], "k": r["k"],
                        "weight_bytes": r["weight_bytes"], "matvec_GB_per_s": mv["GB_per_s"],
                        "read_bandwidth_GB_per_s": result["read_bandwidth_GB_per_s"][t],
                        "of_bandwidth": mv["of_bandwidth"], "of_best_bandwidth": mv["of_best_bandwidth"],
                        "matmul_n": r["matmul"]["n"], "matmul_threads": r["matmul"]["threads"],
                        "matmul_GFLOP_per_s": r["matmul"]["GFLOP_per_s"]})
    return out


def render(result: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result, indent=2)
    kernels = result.get("benchmark") == "kernels"
    if fmt == "md":
        if kernels:
            return vulkan_kernels_markdown(result) if is_vulkan(result) else kernels_markdown(result)
        return model_markdown(result)
    if fmt == "csv":
        if kernels and is_vulkan(result):
            return _csv(VULKAN_KERNEL_CSV_FIELDS, vulkan_kernel_rows(result))
        if kernels:
            return _csv(KERNEL_CSV_FIELDS, kernel_rows(result))
        compared = any("compare_engine" in r for r in result["results"])
        return _csv(CSV_FIELDS + (COMPARE_FIELDS if compared else []), result["results"])
    raise ValueError(f"-o: unknown format {fmt!r} (md, json, csv)")


def results_dir() -> Path:
    """benchmarks/results of the checkout ($GPT4ALL_CORE_BENCH_RESULTS overrides)."""
    env = os.environ.get("GPT4ALL_CORE_BENCH_RESULTS")
    return Path(env) if env else REPO / "benchmarks" / "results"


def save(result: dict) -> Path:
    """Writes bench-<commit>.json (models) or bench-kernels-<commit>.json into results_dir()."""
    d = results_dir()
    d.mkdir(parents=True, exist_ok=True)
    kind = "bench-kernels" if result.get("benchmark") == "kernels" else "bench"
    path = d / f"{kind}-{result['machine']['commit']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
