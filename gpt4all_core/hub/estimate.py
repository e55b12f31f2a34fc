"""How much memory a model takes: weights, KV cache and working memory for a context, on the CPU
and on each GPU device, and the largest context that fits.

The numbers follow what this engine allocates: weights stay in the mmap'd file (they count
against RAM as page cache; the Q4_0, Q4_1 and Q8_0 matrices that the CPU multiplies 16 rows at a
time on AVX-512 VNNI are copied once, repacked, the same size, their file pages unmapped as each
slice is copied); the KV cache is F16, K and V for every block and every slot (2 * n_block * n_ctx *
n_head_kv * head_dim * 2 bytes, per-block head counts and separate K/V head sizes respected); working
memory is the C decoder's scratch for one prompt batch (kernels/decoder.c's layout), the logits, and
the buffer a context erase needs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gpt4all_core.errors import UnsupportedModelError
from gpt4all_core.gguf.reader import GGUFFile

F16_BYTES = 2
ENCODERS = {"bert", "nomic-bert"}  # no KV cache: the whole input goes through at once


@dataclass(frozen=True)
class HParams:
    architecture: str
    n_block: int
    n_embd: int
    n_head: int
    n_head_kv: tuple[int, ...]  # per block
    key_length: int
    value_length: int
    n_ff: int
    n_vocab: int
    n_ctx_train: int | None

    @property
    def kv_bytes_per_token(self) -> int:
        return sum(h * (self.key_length + self.value_length) for h in self.n_head_kv) * F16_BYTES


def hparams(gf: GGUFFile) -> HParams:
    """The hyper-parameters memory depends on, from the GGUF metadata (llama, qwen2, gemma3, bert
    and any architecture that names its keys the same way)."""
    arch = gf.architecture
    if not arch:
        raise UnsupportedModelError(f"{gf.path}: no general.architecture, cannot estimate memory")

    def need(key: str) -> Any:
        value = gf.get(f"{arch}.{key}")
        if value is None:
            raise UnsupportedModelError(f"{gf.path}: cannot estimate memory: no {arch}.{key} in the metadata")
        return value

    n_block, n_embd, n_head = int(need("block_count")), int(need("embedding_length")), need("attention.head_count")
    n_head = int(np.max(n_head))
    kv = gf.get(f"{arch}.attention.head_count_kv", n_head)
    n_head_kv = tuple(int(x) for x in np.broadcast_to(np.asarray(kv), (n_block,)))
    key_length = int(gf.get(f"{arch}.attention.key_length", n_embd // n_head))
    value_length = int(gf.get(f"{arch}.attention.value_length", key_length))
    n_ff = int(np.max(gf.get(f"{arch}.feed_forward_length", 4 * n_embd)))
    tokens = gf.get("tokenizer.ggml.tokens")
    n_vocab = len(tokens) if tokens is not None else int(gf.get(f"{arch}.vocab_size", 0))
    if not n_vocab and "token_embd.weight" in gf.tensors:
        n_vocab = gf.tensors["token_embd.weight"].ne[1]
    ctx = gf.get(f"{arch}.context_length")
    return HParams(arch, n_block, n_embd, n_head, n_head_kv, key_length, value_length, n_ff, n_vocab,
                   int(ctx) if ctx else None)


@dataclass(frozen=True)
class Device:
    """A device to place layers on: a name and its free memory in bytes."""
    name: str
    memory: int


def gpu_devices() -> list[Device]:
    """GPU devices the engine can use: none, until the Vulkan backend is built."""
    return []


@dataclass
class DeviceFit:
    device: Device
    n_gpu_layers: int  # blocks that fit, with their KV cache; n_block + 1 means the output too
    bytes_used: int


@dataclass
class MemoryEstimate:
    hparams: HParams
    n_ctx: int
    n_batch: int
    weights: int
    kv_cache: int
    working: int
    available_ram: int | None
    max_ctx_ram: int | None  # the largest context whose total fits in available_ram
    devices: list[DeviceFit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.working

    def as_dict(self) -> dict[str, Any]:
        return {"architecture": self.hparams.architecture, "n_ctx": self.n_ctx, "n_ctx_train": self.hparams.n_ctx_train,
                "n_batch": self.n_batch, "weights": self.weights, "kv_cache": self.kv_cache,
                "kv_per_token": self.hparams.kv_bytes_per_token if self.hparams.architecture not in ENCODERS else 0,
                "working": self.working, "total": self.total, "available_ram": self.available_ram,
                "max_ctx_ram": self.max_ctx_ram,
                "devices": [{"name": d.device.name, "memory": d.device.memory, "n_gpu_layers": d.n_gpu_layers,
                             "bytes": d.bytes_used} for d in self.devices],
                "notes": list(self.notes)}


def kv_cache_bytes(hp: HParams, n_ctx: int) -> int:
    return 0 if hp.architecture in ENCODERS else hp.kv_bytes_per_token * n_ctx


def _align64(n: int) -> int:
    return (n + 63) & ~63


def _act_row_bytes(type_id: int, n_in: int) -> int:
    """Bytes of one row of activations quantized for a weight type (its vec_dot type)."""
    try:
        from gpt4all_core.backend import cpu_kernels
        info = cpu_kernels.type_info(type_id)
        act = cpu_kernels.type_info(info["activation_type_id"])
        return -(-n_in // act["block_size"]) * act["type_size"]
    except (ImportError, ValueError, KeyError):
        return 4 * n_in  # an unknown type: as F32, the most it can take


def working_bytes(hp: HParams, n_ctx: int, n_batch: int, tensors: dict[str, Any]) -> int:
    """CPU working memory: the decoder's scratch for a batch, the logits, a context erase's buffer."""
    n = n_batch
    if hp.architecture in ENCODERS:  # all n_ctx tokens at once, with their attention scores
        return 4 * n_ctx * (4 * hp.n_embd + hp.n_ff) + 4 * hp.n_head * n_ctx * n_ctx
    q_dim, kv_dim = hp.n_head * hp.key_length, max(hp.n_head_kv) * hp.key_length
    wide = max(q_dim, hp.n_embd)
    floats = [n * hp.n_embd, n * wide, n * q_dim, n * kv_dim, n * kv_dim, n * q_dim, n * hp.n_ff, n * hp.n_ff]
    scratch = sum(_align64(4 * x) for x in floats)
    act = 0
    for t in tensors.values():
        if t.name.endswith(".weight") and len(t.ne) == 2 and (t.name.startswith("blk.") or t.name == "output.weight"):
            act = max(act, _act_row_bytes(int(t.type), t.ne[0]) * n)
    if "output.weight" not in tensors and "token_embd.weight" in tensors:  # tied output
        t = tensors["token_embd.weight"]
        act = max(act, _act_row_bytes(int(t.type), t.ne[0]) * n)
    logits = 4 * hp.n_vocab
    erase = 4 * n_ctx * kv_dim  # the kept K rows, widened to F32 while they are re-rotated
    return scratch + _align64(act) + logits + erase


def available_ram() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else the free physical pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _layer_weights(files: list[GGUFFile], n_block: int) -> tuple[list[int], int]:
    per_block = [0] * n_block
    rest = 0
    for f in files:
        for t in f.tensors.values():
            parts = t.name.split(".")
            if parts[0] == "blk" and len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < n_block:
                per_block[int(parts[1])] += t.nbytes
            else:
                rest += t.nbytes
    return per_block, rest


def fit_layers(hp: HParams, per_block: list[int], rest: int, n_ctx: int, device: Device) -> DeviceFit:
    """How many blocks (weights and their KV cache) fit in a device's memory, llama.cpp's -ngl
    counting: n_block + 1 when the rest (embeddings, output) fits as well."""
    used = 0
    n = 0
    kv_per_block = [0 if hp.architecture in ENCODERS else h * (hp.key_length + hp.value_length) * F16_BYTES * n_ctx
                    for h in hp.n_head_kv]
    for w, kv in zip(per_block, kv_per_block):
        if used + w + kv > device.memory:
            return DeviceFit(device, n, used)
        used += w + kv
        n += 1
    if used + rest <= device.memory:
        return DeviceFit(device, n + 1, used + rest)
    return DeviceFit(device, n, used)


def estimate(files: list[GGUFFile], n_ctx: int | None = None, *, n_batch: int = 8,
             devices: list[Device] | None = None, ram: int | None = None) -> MemoryEstimate:
    """Memory for a model (all its GGUF parts, local or remote headers) at n_ctx (default: 2048, the
    API's default, or the model's trained context if smaller). devices: GPUs to fit layers on
    (default gpu_devices(): none yet). ram: bytes available (default: MemAvailable)."""
    if not files:
        raise ValueError("estimate: no GGUF files given")
    hp = hparams(files[0])
    if n_ctx is None:
        n_ctx = min(2048, hp.n_ctx_train or 2048)
    if not isinstance(n_ctx, int) or n_ctx < 1:
        raise ValueError(f"n_ctx must be a positive integer, not {n_ctx!r}")
    tensors = {name: t for f in files for name, t in f.tensors.items()}
    weights = sum(t.nbytes for t in tensors.values())
    notes = []
    if hp.n_ctx_train and n_ctx > hp.n_ctx_train:
        notes.append(f"n_ctx {n_ctx} is beyond the {hp.n_ctx_train} tokens the model was trained on")
    if hp.architecture in ENCODERS:
        notes.append(f"{hp.architecture} is an encoder: no KV cache; working memory is approximate")
    ram = available_ram() if ram is None else ram
    est = MemoryEstimate(hp, n_ctx, n_batch, weights, kv_cache_bytes(hp, n_ctx),
                         working_bytes(hp, n_ctx, n_batch, tensors), ram, None, notes=notes)
    if ram is not None:
        est.max_ctx_ram = _max_ctx(hp, weights, n_batch, tensors, ram)
    per_block, rest = _layer_weights(files, hp.n_block)
    devices = gpu_devices() if devices is None else devices
    est.devices = [fit_layers(hp, per_block, rest, n_ctx, d) for d in devices]
    if not devices:
        notes.append("GPU: no Vulkan backend yet, so no devices to place layers on")
    return est


def _max_ctx(hp: HParams, weights: int, n_batch: int, tensors: dict[str, Any], ram: int) -> int:
    """The largest context (up to the trained one) whose weights + KV cache + working memory fit."""
    def fits(n: int) -> bool:
        return weights + kv_cache_bytes(hp, n) + working_bytes(hp, n, n_batch, tensors) <= ram

    high = hp.n_ctx_train or 1 << 24
    if not fits(1):
        return 0
    if fits(high):
        return high
    lo, hi = 1, high  # fits(lo), not fits(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo
