"""Every shaders/*.comp is built to SPIR-V, is valid, and runs on a Vulkan device through Kompute."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gpt4all_core.backend import shaders

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p.stem for p in (ROOT / "shaders").glob("*.comp"))


def test_every_shader_is_listed_in_the_build_and_compiled():
    listed = re.findall(r"'([\w-]+)\.comp'", (ROOT / "shaders" / "meson.build").read_text())
    assert sorted(listed) == SOURCES
    assert shaders.available() == SOURCES


@pytest.mark.parametrize("name", SOURCES)
def test_spirv_validates(name, tmp_path):
    spv = tmp_path / f"{name}.spv"
    spv.write_bytes(shaders.spirv(name))
    assert spv.read_bytes()[:4] == b"\x03\x02\x23\x07"  # SPIR-V magic, little-endian
    result = subprocess.run([shutil.which("spirv-val") or "spirv-val", "--target-env", "vulkan1.1", str(spv)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_shader_is_named():
    with pytest.raises(FileNotFoundError, match="no compiled shader 'nope'.*add_f32"):
        shaders.spirv("nope")


def test_add_f32_runs_clean_under_the_validation_layer():
    """On lavapipe in CI (or whatever Vulkan device is first), with the Khronos validation layer on."""
    script = textwrap.dedent("""
        import numpy as np, kp
        from gpt4all_core.backend import shaders
        n = 1000
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((2, n)).astype(np.float32)
        mgr = kp.Manager()
        ta, tb, tc = mgr.tensor(a), mgr.tensor(b), mgr.tensor(np.zeros(n, np.float32))
        algo = mgr.algorithm([ta, tb, tc], shaders.spirv("add_f32"), ((n + 63) // 64, 1, 1), [],
                             np.array([n], dtype=np.uint32))
        (mgr.sequence().record(kp.OpTensorSyncDevice([ta, tb, tc])).record(kp.OpAlgoDispatch(algo))
            .record(kp.OpTensorSyncLocal([tc])).eval())
        assert np.array_equal(tc.data(), a + b), "wrong sums"
        print("device:", mgr.get_device_properties()["device_name"])
    """)
    env = {**os.environ, "VK_INSTANCE_LAYERS": "VK_LAYER_KHRONOS_validation"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "device:" in output
    assert "Validation Error" not in output and "VUID" not in output, output
