"""CPU kernels against the roofline: matrix-vector GB/s per weight type next to the machine's read
bandwidth, and matrix-matrix GFLOP/s at a batch of 512. The code is gpt4all_core.bench.kernels; this
script is `gpt4all-core bench kernels` with the old options and file names.

    python benchmarks/kernels.py [--types Q4_0,Q8_0] [--mib 1024] [-r 5] [--save]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gpt4all_core.bench.kernels import TYPES, run_kernels
from gpt4all_core.bench.plot import plot_kernels

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--types", default=",".join(TYPES))
    ap.add_argument("--mib", type=int, default=1024, help="size of each matrix-vector weight matrix")
    ap.add_argument("--k", type=int, default=4096, help="row length")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--threads", default=None, help="thread counts, e.g. 1,2 (default: 1 and the cores)")
    ap.add_argument("-r", "--repeats", type=int, default=5)
    ap.add_argument("--save", action="store_true", help="write JSON and a PNG plot to benchmarks/results/")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")] if args.threads else None
    result = run_kernels(args.types.split(","), args.mib, args.k, args.batch, threads, args.repeats,
                         progress=lambda s: print(s, flush=True))
    if args.save:
        out = HERE / "results" / f"kernels-cpu-{result['machine']['commit']}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        plot_kernels(result, out.with_suffix(".png"))
        print(f"saved {out.relative_to(HERE.parent)} and {out.with_suffix('.png').name}", file=sys.stderr)


if __name__ == "__main__":
    main()
