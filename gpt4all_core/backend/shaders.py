"""The SPIR-V compiled from shaders/*.comp by the build, installed inside the package."""
from __future__ import annotations

from importlib import resources


def _shader_dir():
    return resources.files("gpt4all_core") / "shaders"


def available() -> list[str]:
    """Names of the compiled shaders (file names without .spv)."""
    return sorted(p.name[: -len(".spv")] for p in _shader_dir().iterdir() if p.name.endswith(".spv"))


def spirv(name: str) -> bytes:
    """The SPIR-V words of shader ``name`` as bytes."""
    path = _shader_dir() / f"{name}.spv"
    if not path.is_file():
        raise FileNotFoundError(f"no compiled shader {name!r}; the build has: {', '.join(available())}")
    return path.read_bytes()
