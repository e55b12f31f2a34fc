"""Running Python code in a child process with the Khronos validation layer on, and reading what
it reported.

Kompute installs its own debug callback (which logs nothing in the kp wheel), and that silences
the layer's default printer: the layer logs to a file instead, named in vk_layer_settings.txt.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent


def run_under_validation(code: str, workdir: Path, *args: str, timeout: int = 300, sync: bool = False) -> str:
    """Runs code (python -c) with args; returns its output and the layer's log. Fails on a
    non-zero exit. sync: synchronization validation too (hazards between commands)."""
    log = workdir / "validation.log"
    (workdir / "vk_layer_settings.txt").write_text(
        "khronos_validation.debug_action = VK_DBG_LAYER_ACTION_LOG_MSG\n"
        f"khronos_validation.log_filename = {log}\n"
        "khronos_validation.report_flags = error,warn\n"
        + ("khronos_validation.enables = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT\n" if sync else "")
    )
    env = {**os.environ, "VK_INSTANCE_LAYERS": "VK_LAYER_KHRONOS_validation", "VK_LAYER_SETTINGS_PATH": str(workdir),
           "PYTHONPATH": os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                            timeout=timeout)
    output = result.stdout + result.stderr + (log.read_text() if log.exists() else "")
    assert result.returncode == 0, output[-5000:]
    return output


def layer_errors(output: str) -> list[str]:
    """The layer's error and warning lines (validation errors name a VUID)."""
    return [line for line in output.splitlines() if "Validation Error" in line or "VUID" in line
            or "Validation Warning" in line]
