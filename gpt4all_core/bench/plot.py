"""PNG charts of saved results (matplotlib, Agg backend): tokens/s per model and device for model
results; the roofline for kernel results."""
from __future__ import annotations

import json
from pathlib import Path

from gpt4all_core.bench.devices import BenchError
from gpt4all_core.bench.report import is_vulkan


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise BenchError("plotting needs matplotlib: pip install 'gpt4all-core[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def load(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"result file not found: {path}")
    try:
        result = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"{path}: not a JSON result ({e})") from None
    if not isinstance(result, dict) or not ("results" in result or result.get("benchmark") == "kernels"):
        raise BenchError(f"{path}: not a `gpt4all-core bench` result (no 'results' rows, not a kernels result)")
    return result


def plot_models(result: dict, out: Path) -> None:
    plt = _pyplot()
    rows = result["results"]
    tests = list(dict.fromkeys(r["test"] for r in rows))
    fig, axes = plt.subplots(1, len(tests), figsize=(6 * len(tests), 4.5), squeeze=False)
    for ax, test in zip(axes[0], tests):
        sel = [r for r in rows if r["test"] == test]
        labels = [f"{Path(r['model_filename']).stem}\n{r['device']}" + (f", {r['n_threads']}t" if r["device"] == "cpu"
                                                                     else f", ngl {r.get('n_gpu_layers', '?')}")
                  for r in sel]
        xs = range(len(sel))
        compared = any(r.get("compare_avg_ts") for r in sel)
        w = 0.4 if compared else 0.7
        ax.bar([x - w / 2 * compared for x in xs], [r["avg_ts"] for r in sel], w,
               yerr=[r["stddev_ts"] for r in sel], capsize=3, label="gpt4all-core")
        if compared:
            ax.bar([x + w / 2 for x in xs], [r.get("compare_avg_ts") or 0 for r in sel], w,
                   yerr=[r.get("compare_stddev_ts") or 0 for r in sel], capsize=3,
                   label=sel[0].get("compare_engine", "llama.cpp"))
        ax.set_xticks(list(xs), labels, fontsize=7)
        ax.set_ylabel("tokens/s")
        ax.set_title(test)
        ax.legend(fontsize=8)
    m = result.get("machine", {})
    gpus = sorted({f"{r['device']}: {r.get('device_name', '?')}" for r in rows if r["device"] != "cpu"})
    fig.suptitle(f"gpt4all-core bench ({m.get('cpu', '?')}, {m.get('simd', '?')}{''.join('; ' + g for g in gpus)}, "
                 f"{m.get('commit', '?')})", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _kernel_series(result: dict) -> tuple[str, str, dict]:
    """(title, roof name, {series label: (bandwidth GB/s, one matvec dict per row)}): a CPU result has
    a series per thread count against read bandwidth, a Vulkan one a single series against copy bandwidth."""
    rows, m = result["rows"], result.get("machine", {})
    if not is_vulkan(result):
        return (f"gpt4all-core CPU kernels ({m.get('cpu', '?')}, {m.get('simd', '?')}, {m.get('commit', '?')})",
                "read bandwidth", {f"{t}t": (bw, [r["matvec"][t] for r in rows])
                                   for t, bw in result["read_bandwidth_GB_per_s"].items()})
    return (f"gpt4all-core Vulkan kernels ({result['device_name']}, {m.get('commit', '?')})", "copy bandwidth",
            {result["device"]: (result["copy_bandwidth_GB_per_s"], [r["matvec"] for r in rows])})


def plot_kernels(result: dict, out: Path) -> None:
    """Roofline (log-log): GFLOP/s against arithmetic intensity (flops per weight byte read); the roofs
    are the measured bandwidth and the compute probe; matrix-vector and matrix-matrix points per type."""
    plt = _pyplot()
    rows = result["rows"]
    title, roof_name, series = _kernel_series(result)
    fig, (bars, roof) = plt.subplots(1, 2, figsize=(14, 5))
    width = 0.8 / len(series)
    for i, (label, (bw, mvs)) in enumerate(series.items()):
        bars.bar([j + i * width for j in range(len(rows))], [mv["GB_per_s"] for mv in mvs], width,
                 label=f"matrix-vector, {label}")
        bars.axhline(bw, linestyle="--", color=f"C{i}", label=f"{roof_name}, {label}")
    bars.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(rows))], [r["type"] for r in rows],
                    fontsize=7, rotation=45)
    bars.set_ylabel("weight bytes read, GB/s")
    bars.set_title(f"matrix-vector against {roof_name}")
    bars.legend(fontsize=7)

    top = list(series)[-1]
    bw, top_mvs = series[top]
    peak = (result.get("compute_probe") or {}).get("GFLOP_per_s")
    points = []
    for r, mv in zip(rows, top_mvs):
        points.append((2 * r["m"] * r["k"] / r["weight_bytes"], 2 * r["m"] * r["k"] / mv["median_s"] / 1e9, r["type"], "o"))
        mm = r["matmul"]
        wbytes = mm.get("weight_bytes", r["weight_bytes"] / r["m"] * mm["m"])
        points.append((2 * mm["m"] * mm["k"] * mm["n"] / wbytes, mm["GFLOP_per_s"], r["type"], "s"))
    xs = [p[0] for p in points]
    lo, hi = min(xs) / 2, max(xs) * 2
    top_y = max([p[1] for p in points] + [peak or 0])
    ridge_cap = peak or top_y * 1.5
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    roof.plot(grid, [min(bw * x, ridge_cap) for x in grid], "k-",
              label=f"{roof_name} {bw:.1f} GB/s" + (f", compute probe {peak:.0f} GFLOP/s" if peak else ""))
    for i, (x, y, name, marker) in enumerate(points):
        roof.scatter([x], [y], marker=marker, color=f"C{(i // 2) % 10}")
        roof.annotate(name, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    roof.scatter([], [], marker="o", color="gray", label=f"matrix-vector ({top})")
    roof.scatter([], [], marker="s", color="gray", label="matrix-matrix")
    roof.set_xscale("log")
    roof.set_yscale("log")
    roof.set_xlabel("flops per weight byte")
    roof.set_ylabel("GFLOP/s")
    roof.set_title("roofline")
    roof.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot(result: dict, out: str | Path) -> Path:
    out = Path(out)
    if result.get("benchmark") == "kernels":
        plot_kernels(result, out)
    else:
        plot_models(result, out)
    return out
