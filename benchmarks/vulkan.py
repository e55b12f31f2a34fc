"""The GPU benchmark (issue 7), made for calls of the device tool after benchmarks/gpu/setup.sh
(benchmarks/gpu/run.sh does the whole thing): the device (device_info.py) and its bandwidth
(bandwidth.py), correctness of the Vulkan backend on the GPU (its tests), matrix-vector GB/s per
weight type against the device's copy bandwidth, then pp512 and tg128 of each model file on our
Vulkan backend and on llama.cpp's own Vulkan build (llama-bench -ngl 99), file by file, side by side.

    python3 benchmarks/vulkan.py --models DIR [--files a.gguf,b.gguf] [--llama-bench PATH] [--out DIR]
                                 [--state FILE] [--deadline EPOCH_S] [--skip tests,kernels,models,llama]

A call of the device tool lasts at most 10 minutes, so the run is a list of steps whose results
go into --state as each ends: a step that would not end before --deadline is left for the next
call (exit status 3), which skips what the state already holds. Model files may still be being
written (make_models.py renames each when complete): a step waits for its file. Every call
writes vulkan-<device>-<commit>.json into --out with what is done so far, and prints a table last.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "gpu"))
import settings  # noqa: E402  (gpu/settings.py)
KERNEL_TYPES = ["Q4_0", "Q8_0", "Q4_K", "Q6_K", "Q4_1", "Q5_0", "Q5_1", "Q5_K", "Q2_K", "Q3_K", "F16", "F32"]
MORE_TO_DO = 3
MV_ENV = "GPT4ALL_CORE_VULKAN_MV"  # products.MV_ENV (imported late: after sys.path is set)


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Steps:
    """Results by step name, saved after each step; a step runs only if it fits the deadline."""

    def __init__(self, path: Path, deadline: float):
        self.path, self.deadline = path, deadline
        self.done = json.loads(path.read_text()) if path.is_file() else {}
        self.left: list[str] = []

    def run(self, name: str, seconds: float, fn) -> None:
        if name in self.done:
            return
        if time.time() + seconds > self.deadline:
            say(f"{name}: left for the next call (needs ~{seconds:.0f} s, {self.deadline - time.time():.0f} s left)")
            self.left.append(name)
            return
        t0 = time.time()
        value = fn()
        if value is None:  # not possible now (a file not written yet): try again next call
            self.left.append(name)
            return
        self.done[name] = value
        self.path.write_text(json.dumps(self.done, indent=1))
        say(f"{name}: done in {time.time() - t0:.0f} s")


def run_tests(out: Path) -> dict:
    """The Vulkan backend's tests on this device, less those that need SmolLM2 or Gemma 3 (which do not
    travel), the validation layer, or Mesa's lavapipe (not installed there)."""
    paths = os.environ.get("GPU_TESTS", "").split(",") if os.environ.get("GPU_TESTS") else \
        ["tests/backend/vulkan", "tests/test_api_devices.py"]  # GPU_TESTS: fewer (a comma list)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "8", *paths,
           "-k", "not smollm2 and not gemma3_270m and not validation and not too_large and not lavapipe_is_listed"]
    t0 = time.time()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    (out / "vulkan-tests.log").write_text(r.stdout + r.stderr)
    tail = (r.stdout.strip().splitlines() or ["?"])[-1]
    say(f"tests: {tail} ({time.time() - t0:.0f} s)")
    return {"command": " ".join(cmd[2:]), "exit": r.returncode, "summary": tail}


def wait_for(path: Path, deadline: float, fail_marker: Path | None = None) -> bool:
    while not path.exists():
        if time.time() > deadline or (fail_marker and fail_marker.exists()):
            return False
        time.sleep(2)
    return True


def ours(path: Path, repeats: int) -> list[dict]:
    from gpt4all_core.bench.model import bench_model
    rows = bench_model(path, "vulkan:0", [1], 512, 128, repeats, n_batch=512, n_gpu_layers=99, progress=say)
    return [{**r, "mv_env": os.environ.get(MV_ENV, "")} for r in rows]


def gpu_script(name: str, args: list[str], out: Path) -> dict:
    """benchmarks/gpu/<name> with these arguments, without the tuned $GPT4ALL_CORE_VULKAN_MV (it sets
    its own), writing its JSON to out: that JSON with the command, or the failure."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu" / name), *args, "--json", str(out)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if k != MV_ENV})
    print(r.stdout[-6000:] + r.stderr[-3000:], flush=True)
    if r.returncode:
        return {"command": " ".join(cmd), "exit": r.returncode, "stderr": r.stderr[-4000:]}
    return {"command": " ".join(cmd), "exit": 0, **json.loads(out.read_text())}


def tune_decode(path: Path, what: str) -> dict:
    """gpu/tune_decode.py: decode t/s of this file under each matrix-vector shape of these types, or
    under each of these |-separated settings."""
    return gpu_script("tune_decode.py", [str(path), *(["--settings", what] if "=" in what else ["--types", what])],
                      Path(f"/tmp/tune-{path.stem}.json"))


def ablate(path: Path) -> dict:
    """gpu/ablate_decode.py: the wall time of a decode step with each kind of op left out."""
    return gpu_script("ablate_decode.py", [str(path)], Path(f"/tmp/ablate-{path.stem}.json"))


def kernels_under(setting: str, types: str, mib: int) -> dict:
    """The kernels step with these variables set (VAR=VALUE joined by "&"), then unset again."""
    from gpt4all_core.bench.vulkan_kernels import run_vulkan_kernels
    with settings.environment(settings.parse(setting)):
        return run_vulkan_kernels(0, types.split(","), mib=mib, progress=say)


def adopt_tuned(result: dict) -> None:
    """A tuned mv shape at least 3% faster than the type's own goes into $GPT4ALL_CORE_VULKAN_MV for
    what runs after (the table says so)."""
    for t, b in result.get("best", {}).items():
        if b["t_per_s"] >= 1.03 * b["default_t_per_s"]:
            mine = [s for s in os.environ.get(MV_ENV, "").split(",") if s and not s.startswith(f"{t}=")]
            os.environ[MV_ENV] = ",".join(mine + [b["setting"]])
            say(f"{MV_ENV}={os.environ[MV_ENV]}")


def decode_profile(path: Path) -> dict:
    """Per-op GPU time of a decode step (gpu/profile_decode.py), with its dispatch floor."""
    import profile_decode  # gpu/, on sys.path above
    from gpt4all_core.backend.vulkan.context import get_context
    result = profile_decode.profile(path, "vulkan:0", 32, profile_decode._period_ns("vulkan:0"))
    result["floor"] = profile_decode.dispatch_floor(get_context(0))
    result["floor_host_params"] = profile_decode.dispatch_floor(get_context(0), params="host")
    top = ", ".join(f"{k} {v['us']:.0f}" for k, v in list(result["by_shader"].items())[:8])
    say(f"profile {path.name}: gpu {result['gpu_ms']:.2f} ms, eval {result['eval_ms']:.2f} ms; us: {top}")
    return result


def untuned(path: Path, repeats: int) -> list[dict]:
    """ours() with each type's own matrix-vector shapes, not the sweep's."""
    with settings.environment({MV_ENV: None}):
        return [{**r, "mv_shapes": "untuned"} for r in ours(path, repeats)]


def sweep(types: str, seconds: float) -> dict:
    """gpu/mv_sweep.py over these types (a 7B block's shapes), within `seconds`."""
    return gpu_script("mv_sweep.py", ["--types", types, "--seconds", str(max(10.0, seconds - 20))],
                      Path("/tmp/mv-sweep.json"))


def llama(binary: str, path: Path, repeats: int) -> dict:
    cmd = [binary, "-o", "json", "-ngl", "99", "-p", "512", "-n", "128", "-r", str(repeats), "-m", str(path)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    devices = [line for line in r.stderr.splitlines() if line.startswith("ggml_vulkan:")]
    if r.returncode:
        say(f"llama-bench failed ({r.returncode}): {r.stderr[-800:]}")
        return {"command": " ".join(cmd), "exit": r.returncode, "stderr": r.stderr[-4000:], "rows": []}
    return {"command": " ".join(cmd), "exit": 0, "ggml_vulkan": devices, "rows": json.loads(r.stdout)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, help="folder of the .gguf files")
    ap.add_argument("--files", default="", help="comma list of file names in --models, in order (default: all there)")
    ap.add_argument("--llama-bench", default=None, help="llama.cpp's llama-bench built with GGML_VULKAN")
    ap.add_argument("--llama-done", type=Path, help="a file that exists once llama-bench is built (waited for)")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "benchmarks" / "results")))
    ap.add_argument("--state", type=Path, default=None, help="results so far (default: --out/vulkan-state.json)")
    ap.add_argument("--deadline", type=float, default=float("inf"), help="seconds since the epoch")
    ap.add_argument("--bandwidth", type=Path, help="bandwidth.py's JSON (the device's copy bandwidth)")
    ap.add_argument("--submit-latency", type=Path, help="gpu/submit_latency.c's JSON (a submit's round trip)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--kernel-types", default=",".join(KERNEL_TYPES))
    ap.add_argument("--kernel-settings", default="", help="|-separated VAR=VALUE[&VAR=VALUE] settings the kernels "
                    "step runs again under (like GPT4ALL_CORE_VULKAN_HALVES=1)")
    ap.add_argument("--skip", default="", help="comma list of: tests, kernels, models, llama")
    ap.add_argument("--sweep", default="", help="comma list of types: first find their matrix-vector shapes "
                    "(gpu/mv_sweep.py) and use the best for everything after, tests included")
    ap.add_argument("--sweep-seconds", type=float, default=150)
    ap.add_argument("--tune", default="", help="FILE=TYPE,TYPE;... or FILE=VAR=VALUE|VAR=VALUE;...: "
                    "gpu/tune_decode.py on these files first; a mv shape 3%% faster than the default is used after")
    ap.add_argument("--profile", default="", help="comma list of files to profile (gpu/profile_decode.py)")
    ap.add_argument("--ablate", default="", help="comma list of files: a decode step's time with each kind "
                    "of op left out (gpu/ablate_decode.py), before anything else on the file")
    ap.add_argument("--untuned-too", default="", help="comma list of files also run without the sweep's shapes")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    args.out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))

    from gpt4all_core.backend.vulkan.context import get_context
    from gpt4all_core.backend.vulkan.devices import list_devices
    from gpt4all_core.bench.machine import commit, machine

    ctx = get_context(0)
    steps = Steps(args.state or args.out / "vulkan-state.json", args.deadline)
    steps.run("device", 5, lambda: {"commit": commit(), "machine": machine(), "name": ctx.caps.name,
                                    "subgroup_size": ctx.caps.subgroup_size,
                                    "devices": [d.__dict__ for d in list_devices()]})
    say(f"device 0: {ctx.caps.name}, subgroup {ctx.caps.subgroup_size}")
    if args.bandwidth and args.bandwidth.is_file():  # bandwidth.py's copies, for the roofline
        b = json.loads(args.bandwidth.read_text())
        steps.run("bandwidth", 1, lambda: {"torch_copy": b.get("torch", {}).get("copy_GBps", 0.0),
                                            "shader_copy": b.get("kompute", {}).get("shader_copy_best_GBps", 0.0)})
    if args.submit_latency and args.submit_latency.is_file():
        steps.run("submit latency", 1, lambda: json.loads(args.submit_latency.read_text()))
    if args.sweep:
        steps.run("mv sweep", args.sweep_seconds, lambda: sweep(args.sweep, args.sweep_seconds))
        tuned = steps.done.get("mv sweep", {}).get("env", "")
        if tuned and not os.environ.get(MV_ENV):
            os.environ[MV_ENV] = tuned  # for this process and the tests it starts
        say(f"{MV_ENV}={os.environ.get(MV_ENV, '')}")
    if "kernels" not in skip:
        from gpt4all_core.bench.vulkan_kernels import run_vulkan_kernels
        steps.run("kernels", 120, lambda: run_vulkan_kernels(0, args.kernel_types.split(","), mib=args.mib,
                                                               progress=say))
        for setting in filter(None, args.kernel_settings.split("|")):
            steps.run(f"kernels {setting}", 120, lambda: kernels_under(setting, args.kernel_types, args.mib))
    if "tests" not in skip:
        steps.run("tests", 150, lambda: run_tests(args.out))
    names = [n for n in args.files.split(",") if n] or sorted(p.name for p in args.models.glob("*.gguf"))
    llama_ready = bool(args.llama_bench) and "llama" not in skip
    for name in names:
        path = args.models / name
        if name in args.ablate.split(","):
            steps.run(f"ablate {name}", 90, lambda: ablate(path) if wait_for(path, args.deadline - 90) else None)
        tune = dict(item.split("=", 1) for item in args.tune.split(";") if item)
        if name in tune:
            steps.run(f"tune {name}", 150, lambda: tune_decode(path, tune[name])
                      if wait_for(path, args.deadline - 150) else None)
            adopt_tuned(steps.done.get(f"tune {name}", {}))
        if "models" not in skip:
            steps.run(f"ours {name}", 60, lambda: ours(path, args.repeats)
                      if wait_for(path, args.deadline - 60) else None)
            if name in args.profile.split(","):
                steps.run(f"profile {name}", 40, lambda: decode_profile(path))
            if name in args.untuned_too.split(",") and os.environ.get(MV_ENV):
                steps.run(f"ours untuned {name}", 60, lambda: untuned(path, args.repeats))
        if llama_ready:
            fail = Path(str(args.llama_done) + ".failed") if args.llama_done else None
            steps.run(f"llama {name}", 60, lambda: llama(args.llama_bench, path, args.repeats)
                      if wait_for(path, args.deadline - 60)
                      and (not args.llama_done or wait_for(args.llama_done, args.deadline - 60, fail)) else None)
    result = {"benchmark": "vulkan", **steps.done.get("device", {}), "steps": steps.done, "left": steps.left}
    result["table"] = table(steps.done)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ctx.caps.name).strip("-")
    path = args.out / f"vulkan-{slug}-{result.get('commit', 'unknown')[:7]}.json"
    path.write_text(json.dumps(result, indent=1))
    say(f"wrote {path}; left for the next call: {', '.join(steps.left) or 'nothing'}")
    print("\n".join(result["table"]))
    sys.exit(MORE_TO_DO if steps.left else 0)


def table(done: dict) -> list[str]:
    lines = []
    k = done.get("kernels")
    if k:
        copy = max([k["copy_bandwidth_GB_per_s"], *done.get("bandwidth", {}).values()])
        k = {**k, "copy_bandwidth_GB_per_s": copy}
        lines.append(f"copy bandwidth {copy:.0f} GB/s (read + write; the best of our copy_words shader, "
                     f"bandwidth.py's uvec4 copy and PyTorch's) on {k['device_name']}")
        lines.append("| type | matvec GB/s (one tall matrix) | of copy | 4096x4096 chain GB/s | of copy "
                     "| matmul GFLOP/s |")
        lines.append("|---|---|---|---|---|---|")
        for r in k["rows"]:
            chain = r.get("matvec_chain", {}).get("GB_per_s", 0.0)
            lines.append(f"| {r['type']} | {r['matvec']['GB_per_s']:.0f} | {100 * r['matvec']['GB_per_s'] / copy:.0f}% "
                         f"| {chain:.0f} | {100 * chain / k['copy_bandwidth_GB_per_s']:.0f}% "
                         f"| {r['matmul']['GFLOP_per_s']:.0f} |")
    s = done.get("submit latency")
    if s:
        lines.append("a submit's round trip, plain Vulkan (gpu/submit_latency.c): "
                     + ", ".join(f"{k[:-3]} {v:.1f} us" for k, v in s.items() if k.endswith(" us")))
    for key, ks in done.items():
        if key.startswith("kernels ") and ks:
            lines.append(f"{key}: " + ", ".join(f"{r['type']} matvec {r['matvec']['GB_per_s']:.0f} GB/s, "
                                              f"4096x4096 chain {r['matvec_chain']['GB_per_s']:.0f}"
                                              for r in ks["rows"]))
    for r in done.get("mv sweep", {}).get("types", []):
        if r["best"]:
            b, d = r["rows"][r["best"]], r["rows"]["default"]
            gbs = ", ".join(f"{s} {v['GB_per_s']:.0f}" for s, v in b["shapes"].items())
            lines.append(f"mv sweep {r['type']}: best {r['best']} {1e6 * b['layer_s']:.1f} us a 7B block "
                         f"(GB/s {gbs}), default {r['default_spec'][:2]} {1e6 * d['layer_s']:.1f} us")
    for key, p in done.items():
        for t, b in p.get("best", {}).items() if key.startswith("tune ") else ():
            lines.append(f"{key} {t}: best {b['setting']} {b['t_per_s']:.1f} t/s, default {b['default_t_per_s']:.1f}")
        if key.startswith("ablate ") and "variants" in p:
            lines.append(f"{key} (ms a step): " + ", ".join(f"{k} {v['ms']:.3f}" for k, v in p["variants"].items()))
        if key.startswith("profile "):
            top = ", ".join(f"{k} {v['count']}x {v['us']:.0f} us" for k, v in list(p["by_shader"].items())[:8])
            lines.append(f"{key}: {p['ops']} ops, GPU {p['gpu_ms']:.2f} ms, eval {p['eval_ms']:.2f} ms, forward "
                         f"{p['forward_ms']:.2f} ms, products {p['product_GB_per_s']:.0f} GB/s; {top}; empty dispatch "
                         f"{p['floor']['gpu_us_per_dispatch']:.2f} us"
                         + (f" ({p['floor_host_params']['gpu_us_per_dispatch']:.2f} us, params in host memory)"
                            if "floor_host_params" in p else ""))
    if "tests" in done:
        lines.append(f"tests on the GPU: {done['tests']['summary']}")
    theirs = {}
    for key, value in done.items():
        if key.startswith("llama "):
            for r in value["rows"]:
                theirs[(Path(r["model_filename"]).name, "pp" if r["n_prompt"] else "tg")] = r["avg_ts"]
    rows = [r for key, value in done.items() if key.startswith("ours ") for r in value]
    if rows:
        lines.append("| file | test | ours t/s | llama.cpp Vulkan t/s | ours / llama.cpp |")
        lines.append("|---|---|---|---|---|")
        for r in rows:
            key = (Path(r["model_filename"]).name, r["test"][:2])
            other = theirs.get(key)
            ratio = f"{r['avg_ts'] / other:.2f}" if other else "-"
            label = f"{key[0]} (untuned mv)" if r.get("mv_shapes") == "untuned" else \
                f"{key[0]} (mv {r['mv_env']})" if r.get("mv_env") else key[0]
            lines.append(f"| {label} | {r['test']} | {r['avg_ts']:.1f} | {f'{other:.1f}' if other else '-'} | {ratio} |")
    return lines


if __name__ == "__main__":
    main()
