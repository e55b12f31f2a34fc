"""Patches Kompute 0.9.0's source (the kp sdist, unpacked) before gpt4all-core builds it.

Kompute records, before each OpAlgoDispatch, one buffer barrier per bound tensor from transfer
writes to shader reads (transfer stage to compute stage). That orders a copy before a dispatch,
but nothing orders one dispatch after another: a shader reading what the previous dispatch wrote
is a read-after-write hazard by the Vulkan spec (NVIDIA's, RADV's and lavapipe's drivers happen to
serialize anyway; others need not). The patched barrier also covers shader writes from the compute
stage, and shader writes after reads, so each dispatch waits for what it depends on. The package
version becomes 0.9.0+gk1, which dev.sh and gpt4all_core check for.

    python tools/kp_patch.py SOURCE_DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

VERSION = "0.9.0+gk1"
OLD_BARRIER = """          vk::AccessFlagBits::eTransferWrite,
          vk::AccessFlagBits::eShaderRead,
          vk::PipelineStageFlagBits::eTransfer,
          vk::PipelineStageFlagBits::eComputeShader);"""
# recordPrimaryBufferMemoryBarrier takes single flag bits; the combined masks pass through a cast
NEW_BARRIER = """          static_cast<vk::AccessFlagBits>(VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_SHADER_WRITE_BIT),
          static_cast<vk::AccessFlagBits>(VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT),
          static_cast<vk::PipelineStageFlagBits>(VK_PIPELINE_STAGE_TRANSFER_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT),
          vk::PipelineStageFlagBits::eComputeShader);  // gpt4all-core: dispatch after dispatch"""


def patch(root: Path) -> None:
    op = root / "src" / "OpAlgoDispatch.cpp"
    text = op.read_text()
    if NEW_BARRIER not in text:
        if text.count(OLD_BARRIER) != 1:
            sys.exit(f"kp_patch: {op} is not Kompute 0.9.0's (its barrier was not found)")
        op.write_text(text.replace(OLD_BARRIER, NEW_BARRIER))
    setup = root / "setup.py"
    text = setup.read_text()
    if f"version='{VERSION}'" not in text:
        if "version='0.9.0'" not in text:
            sys.exit(f"kp_patch: {setup} is not Kompute 0.9.0's")
        setup.write_text(text.replace("version='0.9.0'", f"version='{VERSION}'"))


if __name__ == "__main__":
    patch(Path(sys.argv[1]))
