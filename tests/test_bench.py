"""`gpt4all-core bench`: output that parses in every format, positive values, clear failures, plots,
--save and --compare llama.cpp. Tiny settings: these check the tool, not the speed."""
from __future__ import annotations

import csv
import io
import json

import pytest

from gpt4all_core.bench import compare, report
from gpt4all_core.cli import main
from model_files import random_model

TINY = ["-p", "8", "-n", "4", "-r", "2", "-t", "1"]
KERNELS = ["kernels", "--types", "Q4_0,Q8_0", "--mib", "1", "--k", "256", "--batch", "4", "--matmul-rows", "16",
           "-r", "1", "-t", "1"]


@pytest.fixture(scope="module")
def model():
    return random_model("llama", qtype="Q8_0")


def bench(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["bench", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def check_row(row: dict, model) -> None:
    assert row["model_filename"] == str(model)
    assert row["model_type"].startswith("llama ") and "Q8_0" in row["model_type"]
    assert row["quant_type"] == "Q8_0" and row["backends"] == "CPU" and row["device"] == "cpu"
    assert int(row["model_size"]) > 0 and int(row["model_n_params"]) > 0 and int(row["n_threads"]) == 1
    assert float(row["avg_ts"]) > 0 and float(row["stddev_ts"]) >= 0 and int(row["avg_ns"]) > 0


def test_json(capsys, model):
    rc, out, _ = bench(capsys, model, *TINY, "-o", "json")
    assert rc == 0
    result = json.loads(out)
    assert result["benchmark"] == "model" and result["commit"] == result["machine"]["commit"]
    assert result["machine"]["simd"] and result["machine"]["cpu"]
    rows = result["results"]
    assert [r["test"] for r in rows] == ["pp8", "tg4"]
    assert (rows[0]["n_prompt"], rows[0]["n_gen"], rows[1]["n_prompt"], rows[1]["n_gen"]) == (8, 0, 0, 4)
    for r in rows:
        check_row(r, model)
        assert len(r["samples_ts"]) == 2 and all(v > 0 for v in r["samples_ts"])


def test_csv(capsys, model):
    rc, out, _ = bench(capsys, model, *TINY, "-o", "csv")
    assert rc == 0
    reader = csv.DictReader(io.StringIO(out))
    assert reader.fieldnames == report.CSV_FIELDS
    rows = list(reader)
    assert [r["test"] for r in rows] == ["pp8", "tg4"]
    for r in rows:
        check_row(r, model)


def test_markdown(capsys, model):
    rc, out, err = bench(capsys, model, *TINY)
    assert rc == 0
    lines = [line for line in out.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["model", "size", "params", "device", "backend", "simd", "threads", "test", "t/s"]
    assert set(lines[1]) <= set("|-: ")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [r[7] for r in rows] == ["pp8", "tg4"]
    for r in rows:
        mean, sd = r[8].split(" ± ")
        assert float(mean) > 0 and float(sd) >= 0 and r[3] == "cpu" and r[4] == "CPU"
    assert "pp8" in err  # progress goes to stderr, the table alone to stdout


def test_save(capsys, model, tmp_path, monkeypatch):
    monkeypatch.setenv("GPT4ALL_CORE_BENCH_RESULTS", str(tmp_path))
    rc, _, err = bench(capsys, model, "-p", "4", "-n", "0", "-r", "1", "-t", "1", "--save")
    assert rc == 0
    saved = list(tmp_path.glob("bench-*.json"))
    assert len(saved) == 1 and str(saved[0]) in err
    result = json.loads(saved[0].read_text())
    assert saved[0].name == f"bench-{result['commit']}.json" and [r["test"] for r in result["results"]] == ["pp4"]


@pytest.mark.parametrize("args, message", [
    (["--device", "cpu,vulkan:99"], "--device: device 'vulkan:99': there is no Vulkan device 99"),
    (["--device", "tpu"], "--device: device 'tpu': no Vulkan device is named 'tpu'"),
    (["--device", "cpu,cuda"], "this build has no CUDA backend"),
    (["--device", " , "], "--device: no device given"),
])
def test_unknown_device(capsys, model, args, message):
    rc, out, err = bench(capsys, model, *TINY, *args)
    assert rc == 2 and out == "" and message in err


def test_device_lists(monkeypatch):
    from fake_devices import LAVAPIPE, fake, lavapipe, use_devices

    from gpt4all_core.bench import devices
    use_devices(monkeypatch, [lavapipe(0), fake(1, "NVIDIA H100 80GB HBM3")])
    assert devices.split_devices(f"cpu, kompute:{LAVAPIPE},gpu") == ["cpu", f"kompute:{LAVAPIPE}", "gpu"]
    assert devices.parse_devices(f"cpu,vulkan:0,kompute:{LAVAPIPE},gpu,nvidia,CPU") == ["cpu", "vulkan:0", "vulkan:1"]
    row = devices.describe("vulkan:1")
    assert (row["device"], row["device_name"], row["backends"]) == ("vulkan:1", "NVIDIA H100 80GB HBM3", "Vulkan")
    assert row["driver"] == fake(1, "NVIDIA H100 80GB HBM3").driver_version
    assert devices.describe("cpu")["backends"] == "CPU" and devices.describe("cpu")["driver"] == ""


def test_cpu_and_a_vulkan_device_in_one_run(capsys, model):
    """--device cpu,vulkan:0: each device gets its rows (vulkan:0 is lavapipe in CI, a GPU elsewhere)."""
    from gpt4all_core.backend.vulkan.devices import select_device
    rc, out, _ = bench(capsys, model, "-p", "8", "-n", "2", "-r", "1", "-t", "1", "-ngl", "1", "-o", "json",
                       "--device", "cpu,vulkan:0")
    assert rc == 0
    rows = json.loads(out)["results"]
    assert [(r["device"], r["test"]) for r in rows] == [("cpu", "pp8"), ("cpu", "tg2"), ("vulkan:0", "pp8"),
                                                       ("vulkan:0", "tg2")]
    gpu = rows[2]
    info = select_device("vulkan:0")
    assert (gpu["backends"], gpu["device_name"], gpu["n_gpu_layers"]) == ("Vulkan", info.name, 1)
    assert gpu["driver"] == info.driver_version and rows[0]["driver"] == ""
    assert rows[0]["n_gpu_layers"] == 0 and all(r["avg_ts"] > 0 for r in rows)
    rc, out, _ = bench(capsys, model, "-p", "8", "-n", "2", "-r", "1", "-t", "1", "--device", "vulkan:0")
    assert rc == 0 and f"vulkan:0: {info.name}, driver {info.driver_version}" in out


def test_missing_file(capsys, model, tmp_path):
    rc, out, err = bench(capsys, model, tmp_path / "nope.gguf", *TINY)
    assert rc == 2 and out == ""  # nothing ran: files are checked first
    assert f"model file not found: {tmp_path / 'nope.gguf'}" in err


@pytest.mark.parametrize("args, option", [
    (["-p", "x"], "-p/--n-prompt"), (["-n", "-3"], "-n/--n-gen"), (["-t", "0"], "-t/--threads"),
    (["-t", "1,a"], "-t/--threads"), (["-r", "0"], "-r/--repetitions"), (["-o", "xml"], "-o/--output"),
])
def test_bad_numbers(capsys, model, args, option):
    with pytest.raises(SystemExit) as e:
        main(["bench", str(model), *args])
    assert e.value.code == 2
    assert f"argument {option}" in capsys.readouterr().err


def test_nothing_to_measure(capsys, model):
    rc, _, err = bench(capsys, model, "-p", "0", "-n", "0")
    assert rc == 2 and "nothing to measure" in err


def test_kernels_formats(capsys):
    rc, out, _ = bench(capsys, *KERNELS, "-o", "json")
    assert rc == 0
    result = json.loads(out)
    assert result["benchmark"] == "kernels" and result["machine"]["commit"]
    assert result["read_bandwidth_GB_per_s"]["1"] > 0 and result["compute_probe"]["GFLOP_per_s"] > 0
    assert [r["type"] for r in result["rows"]] == ["Q4_0", "Q8_0"]
    for r in result["rows"]:
        assert r["matvec"]["1"]["GB_per_s"] > 0 and r["matmul"]["GFLOP_per_s"] > 0
    rc, out, _ = bench(capsys, *KERNELS, "--no-probe", "-o", "csv")
    reader = csv.DictReader(io.StringIO(out))
    assert rc == 0 and reader.fieldnames == report.KERNEL_CSV_FIELDS
    assert all(float(r["matvec_GB_per_s"]) > 0 for r in reader)
    rc, out, _ = bench(capsys, *KERNELS, "--no-probe")
    assert rc == 0 and out.startswith("| type ") and "read bandwidth (median)" in out


def test_kernels_bad_arguments(capsys):
    rc, _, err = bench(capsys, *KERNELS, "--types", "Q4_0,Q9_9")
    assert rc == 2 and "unknown or unsupported type 'Q9_9'" in err
    rc, _, err = bench(capsys, *KERNELS, "--device", "vulkan:99")
    assert rc == 2 and "there is no Vulkan device 99" in err
    rc, out, err = bench(capsys, *KERNELS, "--device", "cpu,vulkan:0")
    assert rc == 2 and out == "" and "one device a run" in err
    rc, out, err = bench(capsys, *KERNELS, "--device", "vulkan:0", "--types", "Q4_0,IQ4_NL")
    assert rc == 2 and out == "" and "IQ4_NL has no Vulkan kernels" in err


def test_vulkan_kernels_formats(capsys, tmp_path):
    """--device vulkan:0 (lavapipe in CI): the Vulkan kernels against the device's copy bandwidth,
    in every format, and its plot."""
    rc, out, _ = bench(capsys, *KERNELS, "--device", "vulkan:0", "-o", "json")
    assert rc == 0
    result = json.loads(out)
    assert result["benchmark"] == "kernels" and result["device"] == "vulkan:0" and result["device_name"]
    assert result["copy_bandwidth_GB_per_s"] > 0 and [r["type"] for r in result["rows"]] == ["Q4_0", "Q8_0"]
    for r in result["rows"]:
        assert r["matvec"]["GB_per_s"] > 0 and r["matvec_chain"]["GB_per_s"] > 0 and r["matmul"]["GFLOP_per_s"] > 0
        assert r["matvec"]["of_copy_bandwidth"] == pytest.approx(r["matvec"]["GB_per_s"]
                                                                 / result["copy_bandwidth_GB_per_s"])
    (tmp_path / "k.json").write_text(out)
    rc, out, _ = bench(capsys, *KERNELS, "--device", "vulkan:0", "-o", "csv")
    reader = csv.DictReader(io.StringIO(out))
    assert rc == 0 and reader.fieldnames == report.VULKAN_KERNEL_CSV_FIELDS
    assert [r["type"] for r in reader] == ["Q4_0", "Q8_0"]
    rc, out, _ = bench(capsys, *KERNELS, "--device", "vulkan:0")
    assert rc == 0 and out.startswith("| type ") and "copy bandwidth (read + write, median)" in out
    rc, _, _ = bench(capsys, "plot", tmp_path / "k.json", "-o", tmp_path / "k.png")
    assert rc == 0 and (tmp_path / "k.png").read_bytes().startswith(PNG)


PNG = b"\x89PNG\r\n\x1a\n"


def test_plot_models_and_kernels(capsys, model, tmp_path):
    rc, out, _ = bench(capsys, model, *TINY, "-o", "json")
    (tmp_path / "m.json").write_text(out)
    rc, out, _ = bench(capsys, "plot", tmp_path / "m.json")
    assert rc == 0 and out.strip() == str(tmp_path / "m.png")
    assert (tmp_path / "m.png").read_bytes()[:8] == PNG
    rc, out, _ = bench(capsys, *KERNELS, "-o", "json")
    (tmp_path / "k.json").write_text(out)
    rc, _, _ = bench(capsys, "plot", tmp_path / "k.json", "-o", tmp_path / "roofline.png")
    assert rc == 0 and (tmp_path / "roofline.png").read_bytes()[:8] == PNG


def test_plot_bad_input(capsys, tmp_path):
    rc, _, err = bench(capsys, "plot", tmp_path / "none.json")
    assert rc == 2 and "result file not found" in err
    (tmp_path / "x.json").write_text('{"a": 1}')
    rc, _, err = bench(capsys, "plot", tmp_path / "x.json")
    assert rc == 2 and "not a `gpt4all-core bench` result" in err


def test_compare_with_llama_cpp_python(capsys, model, monkeypatch):
    pytest.importorskip("llama_cpp")
    monkeypatch.setattr(compare.shutil, "which", lambda name: None)  # no llama-bench: the fallback
    rc, out, err = bench(capsys, model, *TINY, "--compare", "llama.cpp", "-o", "json")
    assert rc == 0, err
    rows = json.loads(out)["results"]
    for r in rows:
        assert r["compare_engine"].startswith("llama-cpp-python ")
        assert r["compare_avg_ts"] > 0 and r["ratio"] == pytest.approx(r["avg_ts"] / r["compare_avg_ts"])
    md = report.model_markdown(json.loads(out))
    assert "| ratio |" in md and "compared with llama-cpp-python" in md


def test_compare_without_llama_cpp(capsys, model, monkeypatch):
    monkeypatch.setattr(compare.shutil, "which", lambda name: None)
    monkeypatch.setattr(compare.importlib.util, "find_spec", lambda name: None)
    rc, out, err = bench(capsys, model, *TINY, "--compare", "llama.cpp")
    assert rc == 2 and out == "" and "neither a `llama-bench` executable on PATH nor the llama-cpp-python" in err


def test_compare_parses_llama_bench_json(model, monkeypatch):
    """llama-bench's JSON (fields as its README documents them) matched to our rows by file, threads, test."""
    fake = [{"model_filename": str(model), "n_threads": 1, "n_prompt": 8, "n_gen": 0, "avg_ts": 100.0,
             "stddev_ts": 1.0, "build_commit": "abc123"},
            {"model_filename": str(model), "n_threads": 1, "n_prompt": 0, "n_gen": 4, "avg_ts": 10.0,
             "stddev_ts": 0.5, "build_commit": "abc123"}]

    class Done:
        returncode, stdout, stderr = 0, json.dumps(fake), ""
    calls = []
    monkeypatch.setattr(compare.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or Done())
    rows = [{"model_filename": str(model), "n_threads": 1, "test": "pp8", "avg_ts": 200.0},
            {"model_filename": str(model), "n_threads": 1, "test": "tg4", "avg_ts": 5.0}]
    assert compare.compare(rows, [str(model)], [1], 8, 4, 2, 512, engine="llama-bench") == "llama-bench abc123"
    assert calls[0][:3] == ["llama-bench", "-o", "json"] and ["-m", str(model)] == calls[0][-2:]
    assert [r["ratio"] for r in rows] == [2.0, 0.5]
