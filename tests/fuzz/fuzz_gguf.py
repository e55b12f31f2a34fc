#!/usr/bin/env python3
"""Fuzz target for the GGUF reader (atheris, i.e. libFuzzer for Python).

Every input is written to a file and opened with ``gguf.open``: it must either
open, with every tensor's bytes inside the file and readable, or raise
GGUFError naming an offset inside the file and a field. Any other exception,
a crash or a hang is a finding.

    python tests/fuzz/fuzz_gguf.py --make-corpus CORPUS    # write the seed files
    python tests/fuzz/fuzz_gguf.py CORPUS -max_total_time=300 -rss_limit_mb=2048 -timeout=10

``TestOneInput`` and ``check`` import without atheris, so that
tests/fuzz/test_fuzz_target.py runs the target in CI. See README.md.
"""
from __future__ import annotations

import os
import struct
import sys
import tempfile
from pathlib import Path

# The property lives beside the tests (tests/support), shared with the hypothesis tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from gguf_property import MEMORY_FACTOR, MEMORY_SLACK, open_or_error  # noqa: E402,F401 - the tests read the bound here

_MEASURE = os.environ.get("FUZZ_GGUF_MEASURE") == "1"
_scratch: str | None = None


def _path() -> str:
    global _scratch
    if _scratch is None:
        _scratch = tempfile.mkdtemp(prefix="fuzz_gguf_")
    return os.path.join(_scratch, "input.gguf")


def check(data: bytes, measure: bool = False) -> bool:
    """Open ``data`` as a GGUF file under the property of gguf_property.py: True if it opened,
    False if it raised GGUFError; anything else raises."""
    path = _path()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)  # a fresh inode: no earlier mapping can see its file shrink
    return open_or_error(path, data, measure=measure) is None


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the name atheris and libFuzzer use
    check(data, measure=_MEASURE)


# ---------------------------------------------------------------------------------------------------------------
# Seed corpus


def _nested_arrays_file() -> bytes:
    """GGUF with arrays of arrays, written by hand (no writer needed): every value type once."""
    def s(raw: bytes) -> bytes:
        return struct.pack("<Q", len(raw)) + raw

    kvs = [
        (b"general.architecture", 8, s(b"llama")),
        (b"a.u8", 0, b"\xc8"), (b"a.i8", 1, b"\x9c"), (b"a.u16", 2, struct.pack("<H", 60000)),
        (b"a.i16", 3, struct.pack("<h", -3)), (b"a.u32", 4, struct.pack("<I", 2**32 - 1)),
        (b"a.i32", 5, struct.pack("<i", -5)), (b"a.f32", 6, struct.pack("<f", 0.5)), (b"a.bool", 7, b"\x01"),
        (b"a.u64", 10, struct.pack("<Q", 2**64 - 1)), (b"a.i64", 11, struct.pack("<q", -(2**63))),
        (b"a.f64", 12, struct.pack("<d", 1e300)),
        ("a.ünïcode ✓".encode(), 8, s("🦙 日本語".encode())),
        (b"a.nested", 9, struct.pack("<IQ", 9, 3)
         + struct.pack("<IQ", 0, 2) + b"\x01\x02"
         + struct.pack("<IQ", 8, 2) + s(b"x") + s("ä".encode())
         + struct.pack("<IQ", 9, 2) + struct.pack("<IQ", 6, 1) + struct.pack("<f", 1.0) + struct.pack("<IQ", 7, 0)),
    ]
    header = b"GGUF" + struct.pack("<IQQ", 3, 1, len(kvs))
    for key, vtype, value in kvs:
        header += s(key) + struct.pack("<I", vtype) + value
    header += s(b"t") + struct.pack("<I", 2) + struct.pack("<QQ", 2, 2) + struct.pack("<IQ", 0, 0)
    header += bytes(-len(header) % 32)
    return header + struct.pack("<4f", 1, 2, 3, 4)


def seed_files() -> dict[str, bytes]:
    """Small valid GGUF files: our writer's, with several tensor types and alignments, and one by hand."""
    import numpy as np

    from gpt4all_core.gguf import GGMLType, GGUFValueType, GGUFWriter

    rng = np.random.default_rng(0)

    def blocks(n: int) -> np.ndarray:
        return rng.integers(0, 256, n, dtype=np.uint8)

    out = {"nested.gguf": _nested_arrays_file()}
    with tempfile.TemporaryDirectory() as d:
        def written(name: str, fill, **kw) -> None:
            path = os.path.join(d, name)
            w = GGUFWriter(path, **kw)
            fill(w)
            w.write()
            with open(path, "rb") as f:
                out[name] = f.read()

        def model(w: GGUFWriter) -> None:
            w.add("general.architecture", "llama")
            w.add("general.name", "fuzz ✓")
            w.add("llama.block_count", 1)
            w.add("llama.context_length", 64)
            w.add("llama.attention.layer_norm_rms_epsilon", 1e-5)
            w.add("tokenizer.ggml.model", "llama")
            w.add("tokenizer.ggml.tokens", ["<unk>", "<s>", "</s>", "ä", "🦙"])
            w.add("tokenizer.ggml.scores", np.array([0, 0, 0, -1, -2], np.float32))
            w.add("tokenizer.ggml.token_type", np.array([2, 3, 3, 1, 1], np.int32))
            w.add("tokenizer.ggml.add_bos_token", True)
            w.add("test.nested", [[1, 2], [0.5], ["x", "ü"], [[3], [4, 5]]])
            w.add_tensor("token_embd.weight", rng.standard_normal((5, 8)).astype(np.float32))
            w.add_tensor("blk.0.attn_norm.weight", np.ones(32, np.float16))
            w.add_tensor("blk.0.attn_q.weight", blocks(2 * 18), ggml_type=GGMLType.Q4_0, shape=(2, 32))
            w.add_tensor("blk.0.attn_k.weight", blocks(34), ggml_type=GGMLType.Q8_0, shape=(1, 32))
            w.add_tensor("blk.0.ffn_down.weight", blocks(144), ggml_type=GGMLType.Q4_K, shape=(1, 256))

        def small(w: GGUFWriter) -> None:
            w.add("general.architecture", "tiny")
            w.add("tiny.values", np.arange(4, dtype=np.uint64))
            w.add("tiny.flag", False)
            w.add("tiny.big", -(2**40), GGUFValueType.INT64)
            w.add_tensor("a", np.arange(3, dtype=np.float32))
            w.add_tensor("b", np.arange(4, dtype=np.int8).reshape(2, 2))
            w.add_tensor("c", np.arange(2, dtype=np.float32), ggml_type=GGMLType.BF16)

        def metadata_only(w: GGUFWriter) -> None:
            w.add("general.architecture", "llama")
            w.add("tokenizer.ggml.merges", ["a b", "ab c", "ü ✓"])
            w.add("x.f64", 0.25, GGUFValueType.FLOAT64)

        written("model.gguf", model)
        written("model-align64.gguf", model, alignment=64)
        written("small-align8-v2.gguf", small, alignment=8, version=2)
        written("metadata-only.gguf", metadata_only)
    return out


def make_corpus(directory: str | os.PathLike) -> list[str]:
    os.makedirs(directory, exist_ok=True)
    paths = []
    for name, data in seed_files().items():
        path = os.path.join(directory, name)
        with open(path, "wb") as f:
            f.write(data)
        paths.append(path)
    return paths


def use_native_parser(directory: str) -> None:
    """Import gpt4all_core.gguf._parse from ``directory``: the copy build_native.sh compiled with
    -fsanitize=fuzzer-no-link, whose branches libFuzzer then sees."""
    import importlib.abc
    import importlib.util
    import sysconfig

    so = os.path.join(directory, "_parse" + sysconfig.get_config_var("EXT_SUFFIX"))
    if not os.path.exists(so):
        sys.exit(f"{so} is missing: run tests/fuzz/build_native.sh {directory}")

    class NativeParser(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            return importlib.util.spec_from_file_location(name, so) if name == "gpt4all_core.gguf._parse" else None

    sys.meta_path.insert(0, NativeParser())


def main(argv: list[str]) -> None:
    if len(argv) >= 2 and argv[1] == "--make-corpus":
        if len(argv) != 3:
            sys.exit(f"usage: {argv[0]} --make-corpus DIR")
        for path in make_corpus(argv[2]):
            print(path)
        return
    import atheris

    native = os.environ.get("FUZZ_GGUF_NATIVE")
    if native:
        use_native_parser(native)
    # Coverage feedback for our Python modules (reader.py and co.). The Cython parser is native code:
    # libFuzzer sees its branches only in the instrumented build (FUZZ_GGUF_NATIVE, see README.md).
    with atheris.instrument_imports(include=["gpt4all_core"]):
        import gpt4all_core.gguf  # noqa: F401
    if native:
        parse = sys.modules["gpt4all_core.gguf._parse"].__file__
        if not parse.startswith(os.path.abspath(native)):
            sys.exit(f"the instrumented parser was not loaded ({parse})")
        print(f"fuzz_gguf: instrumented parser {parse}", file=sys.stderr)
    atheris.Setup(argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
