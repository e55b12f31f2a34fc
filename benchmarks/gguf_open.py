"""Opening GGUF files: gpt4all-core's reader against the `gguf` package's, side by side.

    python benchmarks/gguf_open.py [FILE ...] [-r 5] [--save]

"Open" means the metadata and the tensor index, which is what both readers build
on construction. Each reader runs in a fresh child process per repetition (warm
page cache, cold Python caches), and we report the median. The child also reads
/proc/self/smaps after opening: the resident size of the file's mapping is how
much of the file that reader touched: for us the header and no tensor data (the
`gguf` package touches less than its header because it keeps token strings as
unread views, where we decode them).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_FILES = [
    Path.home() / ".cache/gpt4all/SmolLM2-135M-Instruct.Q4_1.gguf",
    Path(os.environ.get("GPT4ALL_CORE_CACHE", Path.home() / ".cache/gpt4all-core")) / "testdata/gemma-3-270m-q4_k_m.gguf",
]

CHILD = r"""
import sys, time, json
path, reader = sys.argv[1], sys.argv[2]
if reader == "gpt4all-core":
    from gpt4all_core import gguf
    t0 = time.perf_counter(); f = gguf.open(path); dt = time.perf_counter() - t0
    n_tensors, n_keys, header = len(f.tensors), len(f.metadata), f.data_offset
else:
    import gguf
    t0 = time.perf_counter(); f = gguf.GGUFReader(path); dt = time.perf_counter() - t0
    n_tensors, n_keys = len(f.tensors), len([k for k in f.fields if not k.startswith("GGUF.")])
    header = min(t.data_offset for t in f.tensors) if f.tensors else None
touched = 0
with open("/proc/self/smaps") as smaps:
    inside = False
    for line in smaps:
        if "-" in line.split(" ", 1)[0]:
            inside = line.rstrip().endswith(path)
        elif inside and line.startswith("Rss:"):
            touched += int(line.split()[1]) * 1024
print(json.dumps({"seconds": dt, "touched_bytes": touched, "tensors": n_tensors, "keys": n_keys, "header_bytes": header}))
"""


def measure(path: Path, reader: str, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", CHILD, str(path), reader], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout))
    return {
        "median_s": statistics.median(r["seconds"] for r in runs),
        "min_s": min(r["seconds"] for r in runs),
        "touched_bytes": max(r["touched_bytes"] for r in runs),
        "tensors": runs[0]["tensors"],
        "keys": runs[0]["keys"],
        "header_bytes": runs[0]["header_bytes"],
    }


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", ".", ":!results"], cwd=HERE,  # code, not results
                                capture_output=True, text=True).stdout.strip())
    from importlib.metadata import version

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": version("numpy"),
            "gguf_package": version("gguf"),
            "commit": commit + ("-dirty" if dirty else ""), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path, default=DEFAULT_FILES)
    ap.add_argument("-r", "--repeats", type=int, default=5)
    ap.add_argument("--save", action="store_true", help="write the result to benchmarks/results/")
    args = ap.parse_args()

    rows = []
    for path in args.files:
        ours = measure(path, "gpt4all-core", args.repeats)
        ref = measure(path, "gguf", args.repeats)
        assert (ours["tensors"], ours["keys"]) == (ref["tensors"], ref["keys"]), "readers disagree"
        # Opening must not read tensor data: what we touched is the header, up to page rounding and
        # the kernel's fault-around window (64 KiB).
        assert ours["touched_bytes"] <= ours["header_bytes"] + (64 << 10), "open touched tensor data"
        rows.append({"file": path.name, "file_bytes": path.stat().st_size, "gpt4all_core": ours, "gguf_package": ref,
                     "speedup": ref["median_s"] / ours["median_s"]})

    print("| file | size | header | tensors | gpt4all-core open | gguf package open | speed-up "
          "| mapping touched by open (ours / gguf) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        o, g = r["gpt4all_core"], r["gguf_package"]
        print(f"| {r['file']} | {r['file_bytes'] / 1e6:.1f} MB | {o['header_bytes'] / 1024:.0f} KiB | {o['tensors']} | {o['median_s'] * 1e3:.1f} ms "
              f"| {g['median_s'] * 1e3:.0f} ms | {r['speedup']:.0f}x | {o['touched_bytes'] / 1024:.0f} KiB / "
              f"{g['touched_bytes'] / 1024:.0f} KiB |")
    result = {"benchmark": "gguf_open", "machine": machine(), "repeats": args.repeats, "rows": rows}
    if args.save:
        out = HERE / "results" / f"gguf_open-{result['machine']['commit']}.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"saved {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
