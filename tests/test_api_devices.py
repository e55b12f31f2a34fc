"""GPT4All(device=...) and Embed4All(device=...) as in the gpt4all package: requests resolved to a
Vulkan device (or the CPU) before anything loads, refusals as ValueErrors naming the devices there
are, the device and backend properties (None and "cpu" on the CPU, as gpt4all 2.8.2 answers), and
GPT4All.list_gpus()."""
from __future__ import annotations

import pytest
from fake_devices import LAVAPIPE, fake, lavapipe, use_devices
from model_files import random_model

from gpt4all_core import GPT4All
from gpt4all_core.backend.vulkan import devices
from gpt4all_core.errors import DeviceError


@pytest.fixture(scope="module")
def path():
    return str(random_model("llama"))


@pytest.mark.parametrize("device", [None, "cpu", "CPU"])
def test_cpu(path, device):
    with GPT4All(path, n_ctx=64, device=device) as m:
        assert m.device is None and m.backend == "cpu" and m._device_info is None


def test_a_named_vulkan_device(path):
    """vulkan:0 is a real device here (lavapipe in CI): the request resolves to it and the object says so."""
    expected = devices.select_device("vulkan:0")
    with GPT4All(path, n_ctx=64, device="vulkan:0", ngl=2) as m:
        assert m._device_info == expected and m._ngl == 2
        assert m.device == expected.name and m.backend == "kompute"
        assert isinstance(m.generate("a", max_tokens=2, temp=0), str)


@pytest.mark.parametrize("device, needles", [
    ("gpu", ["device 'gpu': no GPU among the Vulkan devices", "used only when named"]),
    ("kompute", ["device 'kompute': no GPU"]),
    ("nvidia", ["device 'nvidia': no NVIDIA GPU"]),
    ("tpu", ["device 'tpu': no Vulkan device is named 'tpu'", "'kompute:<device name>', 'vulkan:<index>'"]),
    ("kompute:Radeon", ["no Vulkan device is named 'Radeon'"]),
    ("vulkan:3", ["there is no Vulkan device 3"]),
])
def test_refusals_list_the_devices(path, monkeypatch, device, needles):
    use_devices(monkeypatch, [lavapipe(0)])
    with pytest.raises(ValueError) as e:
        GPT4All(path, device=device)
    assert isinstance(e.value, DeviceError)
    for needle in [*needles, f"vulkan:0 {LAVAPIPE} (cpu, 2.00 GiB, subgroup 8)"]:
        assert needle in str(e.value)


def test_cuda_is_refused_with_the_way_to_a_gpu(path):
    for device in ("cuda", "cuda:NVIDIA H100 80GB HBM3"):
        with pytest.raises(DeviceError, match="no CUDA backend.*device='kompute'"):
            GPT4All(path, device=device)


def test_the_device_is_checked_before_the_model_is_looked_up(tmp_path, monkeypatch):
    use_devices(monkeypatch, [], "no Vulkan loader (libvulkan.so.1) was found")
    with pytest.raises(DeviceError, match="device 'gpu'.*no Vulkan loader .*use device='cpu'"):
        GPT4All("missing-model", model_path=tmp_path, device="gpu")
    with pytest.raises(FileNotFoundError):
        GPT4All("missing-model", model_path=tmp_path, device="cpu")


@pytest.mark.parametrize("ngl", [-1, "all", 2.5, True])
def test_bad_ngl(path, ngl):
    with pytest.raises(ValueError, match=f"ngl must be a non-negative integer .*not {ngl!r}"):
        GPT4All(path, ngl=ngl)


def test_list_gpus(monkeypatch):
    assert GPT4All.list_gpus() == devices.list_gpus()  # the real devices
    assert all(g.startswith("kompute:") and not g.startswith(f"kompute:{LAVAPIPE}") for g in GPT4All.list_gpus())
    use_devices(monkeypatch, [lavapipe(0), fake(1, "NVIDIA GeForce RTX 3060", memory=12 << 30),
                              fake(2, "NVIDIA H100 80GB HBM3", memory=80 << 30)])
    assert GPT4All.list_gpus() == ["kompute:NVIDIA H100 80GB HBM3", "kompute:NVIDIA GeForce RTX 3060"]
    use_devices(monkeypatch, [lavapipe(0)])
    assert GPT4All.list_gpus() == []  # (gpt4all 2.8.2 raises "Unable to retrieve available GPU devices" here)
