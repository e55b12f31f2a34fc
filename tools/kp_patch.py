"""Patches Kompute 0.9.0's source (the kp sdist, unpacked) before gpt4all-core builds it.

Kompute records, before each OpAlgoDispatch, one buffer barrier per bound tensor from transfer
writes to shader reads (transfer stage to compute stage). That orders a copy before a dispatch,
but nothing orders one dispatch after another: a shader reading what the previous dispatch wrote
is a read-after-write hazard by the Vulkan spec (on the H100, back-to-back dispatches did overlap).
The patch records one global memory barrier instead: earlier shader and transfer writes before
this dispatch's reads and writes, compute and transfer stages before the compute stage. It can
also be left out (OpAlgoDispatch.barrier = False from Python) where the caller knows
it depends on nothing since the last one (gpt4all-core's decoder tracks what each op reads and
writes): independent dispatches, such as the q, k and v products, then run without waiting for
one another.

It also gives Sequence a `spin_wait` flag: evalAwait then polls the fence's status until it is
signalled before the (then immediate) wait, so the host sees the end of a submit at once instead
of when the driver wakes a sleeping wait (llama.cpp's Vulkan backend spins on the end of its last
submit the same way). Off by default.

And a `reuse_fence` flag: Kompute creates a fence for each submit and destroys it after the wait;
with the flag one fence serves every submit of the sequence (reset before each, destroyed with the
sequence), as llama.cpp's Vulkan backend keeps its fence. Off by default.

Host-visible memory (staging copies, host tensors) is taken from a memory type that is also
host-cached where the device has one: Kompute takes the first host-visible, coherent type, which on
NVIDIA is write-combined, so that reading a pass's logits back (128 KiB for a 32k vocabulary) ran at
uncached speed, ~0.2 ms a decode step on an H100 host. Cached and coherent memory needs no flush.

The package version becomes 0.9.0+gk5, which dev.sh and gpt4all_core check for.

    python tools/kp_patch.py SOURCE_DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

VERSION = "0.9.0+gk5"
OLD_BARRIERS = """    // Barrier to ensure the data is finished writing to buffer memory
    for (const std::shared_ptr<Tensor>& tensor :
         this->mAlgorithm->getTensors()) {
        tensor->recordPrimaryBufferMemoryBarrier(
          commandBuffer,
          vk::AccessFlagBits::eTransferWrite,
          vk::AccessFlagBits::eShaderRead,
          vk::PipelineStageFlagBits::eTransfer,
          vk::PipelineStageFlagBits::eComputeShader);
    }
"""
NEW_BARRIER = """    // gpt4all-core (tools/kp_patch.py): one global barrier, every earlier shader or transfer write
    // before this dispatch reads or writes, unless the caller ordered it itself (mRecordBarrier)
    if (this->mRecordBarrier) {
        const vk::MemoryBarrier barrier(
          vk::AccessFlagBits::eShaderWrite | vk::AccessFlagBits::eTransferWrite,
          vk::AccessFlagBits::eShaderRead | vk::AccessFlagBits::eShaderWrite);
        commandBuffer.pipelineBarrier(
          vk::PipelineStageFlagBits::eComputeShader | vk::PipelineStageFlagBits::eTransfer,
          vk::PipelineStageFlagBits::eComputeShader,
          vk::DependencyFlags(), 1, &barrier, 0, nullptr, 0, nullptr);
    }
"""
HEADER_PUBLIC = """class OpAlgoDispatch : public OpBase
{
  public:
"""
HEADER_MEMBER = HEADER_PUBLIC + """    bool mRecordBarrier = true;  // gpt4all-core: false leaves the barrier out
"""
BINDING = """           py::arg("algorithm"),
           py::arg("push_consts"));
"""
BINDING_BARRIER = """           py::arg("algorithm"),
           py::arg("push_consts"))
      .def_readwrite("barrier", &kp::OpAlgoDispatch::mRecordBarrier);  // gpt4all-core
"""
SEQ_HEADER_PUBLIC = """class Sequence : public std::enable_shared_from_this<Sequence>
{
  public:
"""
SEQ_HEADER_MEMBER = SEQ_HEADER_PUBLIC + """    bool mSpinWait = false;  // gpt4all-core: evalAwait polls the fence before waiting on it
    bool mReuseFence = false;  // gpt4all-core: one fence for every submit, reset before each
"""
OLD_WAIT = """    vk::Result result =
      this->mDevice->waitForFences(1, &this->mFence, VK_TRUE, waitFor);
"""
NEW_WAIT = """    // gpt4all-core (tools/kp_patch.py): poll first, so the host sees the fence signalled at once
    if (this->mSpinWait) {
        while (this->mDevice->getFenceStatus(this->mFence) == vk::Result::eNotReady) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();  // as llama.cpp's Vulkan backend spins: kinder to a sibling thread
#endif
        }
    }
    vk::Result result =
      this->mDevice->waitForFences(1, &this->mFence, VK_TRUE, waitFor);
"""
SEQ_BINDING = """    py::class_<kp::Sequence, std::shared_ptr<kp::Sequence>>(m, "Sequence")
"""
SEQ_BINDING_SPIN = SEQ_BINDING + """      .def_readwrite("spin_wait", &kp::Sequence::mSpinWait)  // gpt4all-core
      .def_readwrite("reuse_fence", &kp::Sequence::mReuseFence)  // gpt4all-core
"""
OLD_CREATE_FENCE = """    this->mFence = this->mDevice->createFence(vk::FenceCreateInfo());
"""
NEW_CREATE_FENCE = """    // gpt4all-core (tools/kp_patch.py): the sequence's one fence where asked
    if (this->mReuseFence && this->mFence) {
        (void)this->mDevice->resetFences(1, &this->mFence);
    } else {
        this->mFence = this->mDevice->createFence(vk::FenceCreateInfo());
    }
"""
OLD_DESTROY_FENCE = """    this->mDevice->destroy(
      this->mFence, (vk::Optional<const vk::AllocationCallbacks>)nullptr);

    this->mIsRunning = false;
"""
NEW_DESTROY_FENCE = """    if (!this->mReuseFence) {  // gpt4all-core: a reused fence goes with the sequence
        this->mDevice->destroy(
          this->mFence, (vk::Optional<const vk::AllocationCallbacks>)nullptr);
        this->mFence = nullptr;
    }

    this->mIsRunning = false;
"""
OLD_SEQ_DESTROY = """    if (this->mDevice) {
        this->mDevice = nullptr;
    }
"""
NEW_SEQ_DESTROY = """    if (this->mFence && this->mDevice) {  // gpt4all-core: a reused fence
        this->mDevice->destroy(
          this->mFence, (vk::Optional<const vk::AllocationCallbacks>)nullptr);
        this->mFence = nullptr;
    }
    if (this->mDevice) {
        this->mDevice = nullptr;
    }
"""


OLD_MEMORY_TYPE = """    uint32_t memoryTypeIndex = -1;
    bool memoryTypeIndexFound = false;
    for (uint32_t i = 0; i < memoryProperties.memoryTypeCount; i++) {"""
NEW_MEMORY_TYPE = """    uint32_t memoryTypeIndex = -1;
    bool memoryTypeIndexFound = false;
    // gpt4all-core (tools/kp_patch.py): host-visible memory that is host-cached too where there is
    // such a type (reads of write-combined memory run at uncached speed); else as Kompute chooses
    if (memoryPropertyFlags & vk::MemoryPropertyFlagBits::eHostVisible) {
        const vk::MemoryPropertyFlags cached =
          memoryPropertyFlags | vk::MemoryPropertyFlagBits::eHostCached;
        for (uint32_t i = 0; i < memoryProperties.memoryTypeCount; i++) {
            if ((memoryRequirements.memoryTypeBits & (1 << i)) &&
                (memoryProperties.memoryTypes[i].propertyFlags & cached) == cached) {
                memoryTypeIndex = i;
                memoryTypeIndexFound = true;
                break;
            }
        }
    }
    for (uint32_t i = 0; i < memoryProperties.memoryTypeCount && !memoryTypeIndexFound; i++) {"""


def _replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if new in text:
        return
    if text.count(old) != 1:
        sys.exit(f"kp_patch: {path} is not Kompute 0.9.0's (a passage to patch was not found)")
    path.write_text(text.replace(old, new))


def patch(root: Path) -> None:
    _replace_once(root / "src" / "OpAlgoDispatch.cpp", OLD_BARRIERS, NEW_BARRIER)
    _replace_once(root / "src" / "include" / "kompute" / "operations" / "OpAlgoDispatch.hpp", HEADER_PUBLIC,
                  HEADER_MEMBER)
    _replace_once(root / "python" / "src" / "main.cpp", BINDING, BINDING_BARRIER)
    _replace_once(root / "src" / "include" / "kompute" / "Sequence.hpp", SEQ_HEADER_PUBLIC, SEQ_HEADER_MEMBER)
    _replace_once(root / "src" / "Sequence.cpp", OLD_WAIT, NEW_WAIT)
    _replace_once(root / "src" / "Sequence.cpp", OLD_CREATE_FENCE, NEW_CREATE_FENCE)
    _replace_once(root / "src" / "Sequence.cpp", OLD_DESTROY_FENCE, NEW_DESTROY_FENCE)
    _replace_once(root / "src" / "Sequence.cpp", OLD_SEQ_DESTROY, NEW_SEQ_DESTROY)
    _replace_once(root / "python" / "src" / "main.cpp", SEQ_BINDING, SEQ_BINDING_SPIN)
    _replace_once(root / "src" / "Tensor.cpp", OLD_MEMORY_TYPE, NEW_MEMORY_TYPE)
    _replace_once(root / "setup.py", "version='0.9.0'", f"version='{VERSION}'")


if __name__ == "__main__":
    patch(Path(sys.argv[1]))
