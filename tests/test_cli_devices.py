"""The CLI's devices: `gpt4all-core gpus` (real and hand-made lists), --device and --ngl reaching
GPT4All (generate, chat) and the server's config (serve), and bad requests failing before any load."""
from __future__ import annotations

import io
import json
import sys

import pytest
import uvicorn
from fake_devices import LAVAPIPE, fake, lavapipe, use_devices
from model_files import random_model

from gpt4all_core import api, server
from gpt4all_core.backend.vulkan import devices
from gpt4all_core.cli import main

H100 = fake(1, "NVIDIA H100 80GB HBM3", memory=80 << 30)


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_gpus_lists_the_real_devices(capsys):
    rc, out, _ = run(capsys, "gpus")
    assert rc == 0
    for d in devices.list_devices():
        assert f"vulkan:{d.index}  {d.name}\n    {d.type}, vendor {d.vendor}, " in out
        assert f"subgroup {d.subgroup_size}, Vulkan {d.api_version}, driver {d.driver_version}" in out
    rc, out, _ = run(capsys, "list-gpus", "--json")
    doc = json.loads(out)
    assert rc == 0 and [d["name"] for d in doc["devices"]] == [d.name for d in devices.list_devices()]
    assert doc["gpus"] == devices.list_gpus()


def test_gpus_on_hand_made_lists(capsys, monkeypatch):
    use_devices(monkeypatch, [lavapipe(0), H100, fake(2, "Old GPU", ops=("basic",))])
    rc, out, _ = run(capsys, "gpus")
    assert rc == 0 and out.splitlines() == [
        f"vulkan:0  {LAVAPIPE}",
        "    cpu, vendor 0x10005, 2.00 GiB device-local, subgroup 8, Vulkan 1.3.260, driver 1.0.0",
        "    a CPU implementation of Vulkan: used only when named (--device vulkan:0)",
        "vulkan:1  NVIDIA H100 80GB HBM3",
        "    discrete, vendor nvidia, 80.00 GiB device-local, subgroup 32, Vulkan 1.3.260, driver 1.0.0",
        "    --device kompute:NVIDIA H100 80GB HBM3",
        "vulkan:2  Old GPU",
        "    discrete, vendor nvidia, 8.00 GiB device-local, subgroup 32, Vulkan 1.3.260, driver 1.0.0",
        "    unusable: it lacks subgroup arithmetic and shuffle operations (GL_KHR_shader_subgroup_*), which the shaders need",
        "--device gpu picks vulkan:1 (NVIDIA H100 80GB HBM3)"]
    rc, out, _ = run(capsys, "gpus", "--json")
    doc = json.loads(out)
    assert doc["gpus"] == ["kompute:NVIDIA H100 80GB HBM3"] and doc["problem"] is None
    assert [d["problem"] is None for d in doc["devices"]] == [True, True, False]
    use_devices(monkeypatch, [lavapipe(0)])
    assert run(capsys, "gpus")[1].endswith("--device gpu: no GPU that can run the Vulkan backend here\n")
    use_devices(monkeypatch, [], "no Vulkan loader (libvulkan.so.1) was found")
    assert run(capsys, "gpus")[1] == "no Vulkan loader (libvulkan.so.1) was found: only --device cpu is available\n"


@pytest.fixture
def opened(monkeypatch):
    """The keyword arguments of each GPT4All the CLI makes (the model itself is still made)."""
    calls = []
    original = api.GPT4All.__init__

    def recording(self, *args, **kwargs):
        calls.append(kwargs)
        original(self, *args, **kwargs)
    monkeypatch.setattr(api.GPT4All, "__init__", recording)
    return calls


def test_generate_and_chat_pass_device_and_ngl(capsys, monkeypatch, opened):
    path = random_model("llama")
    rc, out, err = run(capsys, "generate", path, "Once", "--max-tokens", "3", "--temp", "0", "--device", "vulkan:0",
                       "--ngl", "5")
    assert rc == 0 and out and err == ""
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hi\n"))
    rc, _, _ = run(capsys, "chat", path, "--question", "Hi", "--max-tokens", "2", "--device", "vulkan:0")
    rc_cpu, _, _ = run(capsys, "generate", path, "Once", "--max-tokens", "1")
    assert [(c["device"], c["ngl"]) for c in opened] == [("vulkan:0", 5), ("vulkan:0", 100), (None, 100)]


@pytest.mark.parametrize("args, message", [
    (["--device", "tpu"], "device 'tpu': no Vulkan device is named 'tpu'"),
    (["--device", "cuda"], "this build has no CUDA backend"),
    (["--ngl", "-1"], "ngl must be a non-negative integer"),
])
def test_generate_refuses_bad_devices(capsys, args, message):
    rc, out, err = run(capsys, "generate", random_model("llama"), "x", *args)
    assert rc == 2 and out == "" and message in err and err.startswith("gpt4all-core generate: error:")


def test_generate_on_lavapipe_only_names_it(capsys, monkeypatch):
    use_devices(monkeypatch, [lavapipe(0)])
    rc, _, err = run(capsys, "generate", random_model("llama"), "x", "--device", "gpu")
    assert rc == 2 and "used only when named" in err and f"vulkan:0 {LAVAPIPE} (cpu, 2.00 GiB" in err


@pytest.fixture
def served(monkeypatch):
    """The ServerConfig of each `serve` (create_app and uvicorn.run replaced: nothing loads or binds)."""
    configs = []
    monkeypatch.setattr(server, "create_app", lambda config: configs.append(config) or object())
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    return configs


def test_serve_passes_the_resolved_device(capsys, served):
    path = random_model("llama")
    assert run(capsys, "serve", path, "--device", "vulkan:0", "--ngl", "7")[0] == 0
    assert run(capsys, "serve", path)[0] == 0
    assert [(c.device, c.ngl) for c in served] == [(devices.select_device("vulkan:0"), 7), (None, 100)]


@pytest.mark.parametrize("args, message", [
    (["--device", "tpu"], "device 'tpu'"), (["--device", "vulkan:99"], "there is no Vulkan device 99"),
    (["--ngl", "-3"], "--ngl must be non-negative, not -3"),
])
def test_serve_refuses_bad_devices_before_loading(capsys, served, args, message):
    rc, _, err = run(capsys, "serve", random_model("llama"), *args)
    assert rc == 2 and not served and message in err
