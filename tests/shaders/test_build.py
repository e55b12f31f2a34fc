"""Every shaders/*.comp is built to SPIR-V, is valid, and runs on a Vulkan device through Kompute."""
from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from gpt4all_core.backend import shaders
from vulkan_validation import run_under_validation

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p.stem for p in (ROOT / "shaders").glob("*.comp"))


TARGETS = dict(re.findall(r"^\s*'([\w-]+)': \['([\w-]+)\.comp'", (ROOT / "shaders" / "meson.build").read_text(), re.M))


def test_every_shader_is_listed_in_the_build_and_compiled():
    assert sorted(set(TARGETS.values())) == SOURCES  # every source builds at least one target
    assert shaders.available() == sorted(TARGETS)


@pytest.mark.parametrize("name", sorted(TARGETS))
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


RUN_ADD = textwrap.dedent("""
    import sys, numpy as np, kp
    spirv = open(sys.argv[1], "rb").read()
    n = 1000
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, n)).astype(np.float32)
    mgr = kp.Manager()
    ta, tb, tc = mgr.tensor(a), mgr.tensor(b), mgr.tensor(np.zeros(n, np.float32))
    algo = mgr.algorithm([ta, tb, tc], spirv, ((n + 63) // 64, 1, 1), [], np.array([n], dtype=np.uint32))
    (mgr.sequence().record(kp.OpTensorSyncDevice([ta, tb, tc])).record(kp.OpAlgoDispatch(algo))
        .record(kp.OpTensorSyncLocal([tc])).eval())
    print("device:", mgr.get_device_properties()["device_name"])
    print("sums:", "right" if np.allclose(tc.data(), a + b, rtol=1e-3) else "wrong")
""")

# Stores through float16_t need storageBuffer16BitAccess, which Kompute never enables.
NEEDS_16BIT_STORAGE = """#version 450
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer C { float16_t c[]; };
layout(push_constant) uniform P { uint n; } p;
void main() { uint i = gl_GlobalInvocationID.x; if (i < p.n) c[i] = float16_t(a[i] + b[i]); }
"""


def run_add(spv: Path) -> str:
    """The c = a + b dispatch in a child process with the Khronos validation layer on."""
    output = run_under_validation(RUN_ADD, spv.parent, str(spv), timeout=120)
    assert "device:" in output
    return output


def test_add_f32_runs_clean_under_the_validation_layer(tmp_path):
    """On lavapipe in CI (or whatever Vulkan device is first)."""
    spv = tmp_path / "add_f32.spv"
    spv.write_bytes(shaders.spirv("add_f32"))
    output = run_add(spv)
    assert "sums: right" in output
    assert "Validation Error" not in output and "VUID" not in output, output


def test_validation_layer_catches_a_missing_device_feature(tmp_path):
    """The control for the test above: a shader needing a feature Kompute leaves off is reported."""
    src = tmp_path / "needs_16bit.comp"
    src.write_text(NEEDS_16BIT_STORAGE)
    spv = tmp_path / "needs_16bit.spv"
    subprocess.run(["glslc", "--target-env=vulkan1.1", str(src), "-o", str(spv)], check=True)
    output = run_add(spv)
    assert "Validation Error" in output and "storageBuffer16BitAccess" in output, output
