"""`gpt4all-core bench`: its three forms, each with its own parser.

    gpt4all-core bench MODEL... [-p 512] [-n 128] [-t 1,2] [--device cpu] [-r 5] [-o md|json|csv]
    gpt4all-core bench kernels [--types Q4_0,Q8_0] [--mib 1024] [-t 1,2] [--device cpu|vulkan:0] [-r 5] [-o ...]
    gpt4all-core bench plot RESULT.json [-o out.png]
"""
from __future__ import annotations

import argparse
import sys

from gpt4all_core.errors import GPT4AllCoreError


def _count(name: str, minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name + ' ' if name else ''}must be at least {minimum}, not {value}")
        return value
    return parse


def _thread_list(text: str) -> list[int]:
    parse = _count("each thread count", 1)
    values = [parse(t) for t in text.split(",")] if text.strip() else []
    if not values:
        raise argparse.ArgumentTypeError("give thread counts like 2 or 1,2")
    return list(dict.fromkeys(values))


def _common(p: argparse.ArgumentParser, repeats: int) -> None:
    p.add_argument("-t", "--threads", type=_thread_list, default=None,
                   help="thread counts, comma-separated (default: the physical cores)")
    p.add_argument("--device", default="cpu", help="devices, comma-separated: cpu, vulkan:<index>, kompute:<name>, "
                   "gpu, nvidia, amd, intel (`gpt4all-core gpus` lists them; default cpu)")
    p.add_argument("-r", "--repetitions", type=_count("", 1), default=repeats,
                   help=f"repetitions of each test (default {repeats})")
    p.add_argument("-o", "--output", choices=["md", "json", "csv"], default="md", help="output format (default md)")
    p.add_argument("--save", action="store_true", help="also write the JSON result into benchmarks/results/")


def model_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpt4all-core bench", description="Prompt processing and generation tokens/s "
                                "(llama-bench's tests and fields). Also: `gpt4all-core bench kernels`, "
                                "`gpt4all-core bench plot RESULT.json`.")
    p.add_argument("models", nargs="+", metavar="MODEL", help="GGUF files")
    p.add_argument("-p", "--n-prompt", type=_count("", 0), default=512,
                   help="prompt tokens of the pp test (0: none; default 512)")
    p.add_argument("-n", "--n-gen", type=_count("", 0), default=128,
                   help="generated tokens of the tg test (0: none; default 128)")
    p.add_argument("-b", "--batch-size", type=_count("", 1), default=512,
                   help="prompt tokens per forward pass (default 512)")
    p.add_argument("-ngl", "--n-gpu-layers", type=_count("", 0), default=99,
                   help="layers on a GPU device (no effect on cpu, recorded as 0)")
    p.add_argument("--compare", choices=["llama.cpp"], default=None,
                   help="also run llama.cpp (llama-bench on PATH, else llama-cpp-python) and add a ratio column")
    _common(p, 5)
    return p


def kernels_parser() -> argparse.ArgumentParser:
    from gpt4all_core.bench.kernels import TYPES
    p = argparse.ArgumentParser(prog="gpt4all-core bench kernels", description="Matrix-vector GB/s and "
                                "matrix-matrix GFLOP/s per weight type against the measured read bandwidth "
                                "(a Vulkan device: its measured copy bandwidth).")
    p.add_argument("--types", default=",".join(TYPES), help="weight types, comma-separated (default: all)")
    p.add_argument("--mib", type=_count("", 1), default=1024,
                   help="size of each matrix-vector weight matrix and of the bandwidth buffer (default 1024)")
    p.add_argument("--k", type=_count("", 256), default=4096, help="row length, a multiple of 256 (default 4096)")
    p.add_argument("--batch", type=_count("", 1), default=512, help="matrix-matrix batch (default 512)")
    p.add_argument("--matmul-rows", type=_count("", 1), default=4096,
                   help="weight rows of the matrix-matrix product (default 4096)")
    p.add_argument("--no-probe", action="store_true", help="skip the in-cache F32 compute probe")
    _common(p, 5)
    return p


def plot_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpt4all-core bench plot", description="PNG chart of a JSON result: "
                                "tokens/s per model and device, or the roofline for kernels.")
    p.add_argument("result", metavar="RESULT.json")
    p.add_argument("-o", "--output", default=None, help="PNG to write (default: RESULT.png)")
    return p


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _finish(result: dict, args) -> None:
    from gpt4all_core.bench import report
    print(report.render(result, args.output))
    if args.save:
        _say(f"saved {report.save(result)}")


def run_model(args) -> None:
    from gpt4all_core.backend import cpu_kernels as ck
    from gpt4all_core.bench import compare, devices, machine, model

    devs = devices.parse_devices(args.device)
    threads = args.threads or [ck.physical_cores()]
    if args.n_prompt == 0 and args.n_gen == 0:
        raise ValueError("-p and -n are both 0: nothing to measure")
    engine = compare.which_engine() if args.compare else None  # fails before anything runs
    rows = model.run_models(args.models, devs, threads, args.n_prompt, args.n_gen, args.repetitions,
                            args.batch_size, args.n_gpu_layers, progress=_say)
    result = {"benchmark": "model", "machine": machine.machine(),
              "settings": {"n_prompt": args.n_prompt, "n_gen": args.n_gen, "threads": threads, "devices": devs,
                           "repetitions": args.repetitions, "n_batch": args.batch_size},
              "results": rows}
    result["commit"] = result["machine"]["commit"]
    if args.compare:
        _say(f"running {engine} on the same files and settings")
        result["compare"] = compare.compare(rows, args.models, threads, args.n_prompt, args.n_gen,
                                            args.repetitions, args.batch_size, engine)
    _finish(result, args)


def run_kernels(args) -> None:
    from gpt4all_core.bench import devices, kernels

    devs = devices.parse_devices(args.device)
    if len(devs) > 1:
        raise devices.BenchError(f"bench kernels: one device a run (--device {args.device!r} names {len(devs)})")
    types = kernels.parse_types(args.types)
    if args.k % 256:
        raise ValueError(f"--k must be a multiple of 256 (the K-quants' block), not {args.k}")
    if devs[0] == "cpu":
        result = kernels.run_kernels(types, args.mib, args.k, args.batch, args.threads, args.repetitions,
                                     args.matmul_rows, probe=not args.no_probe, progress=_say)
    else:
        from gpt4all_core.backend.vulkan import products
        from gpt4all_core.bench.vulkan_kernels import run_vulkan_kernels
        from gpt4all_core.gguf import GGMLType
        missing = [t for t in types if int(GGMLType[t]) not in products.REGISTRY]
        if missing:
            raise devices.BenchError(f"--types: {', '.join(missing)} has no Vulkan kernels (see the README)")
        result = run_vulkan_kernels(int(devs[0].split(":")[1]), types, args.mib, args.k, args.batch,
                                    repeats=args.repetitions, matmul_rows=args.matmul_rows, progress=_say)
    result["commit"] = result["machine"]["commit"]
    _finish(result, args)


def run_plot(args) -> None:
    from pathlib import Path

    from gpt4all_core.bench import plot
    out = Path(args.output) if args.output else Path(args.result).with_suffix(".png")
    print(plot.plot(plot.load(args.result), out))


def main(argv: list[str]) -> int:
    form = argv[0] if argv else None
    if form == "kernels":
        parser, run, argv = kernels_parser(), run_kernels, argv[1:]
    elif form == "plot":
        parser, run, argv = plot_parser(), run_plot, argv[1:]
    else:
        parser, run = model_parser(), run_model
    args = parser.parse_args(argv)
    try:
        run(args)
    except (GPT4AllCoreError, FileNotFoundError, ValueError) as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    return 0
