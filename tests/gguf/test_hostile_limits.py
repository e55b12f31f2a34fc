"""Limits of the GGUF reader under hostile input: memory stays within a small multiple of the file,
and hypothesis mutations of valid files (byte by byte, field by field) either open with every tensor
inside the file or raise GGUFError saying where (the property lives in tests/support/gguf_property.py,
shared with the fuzz target)."""
from __future__ import annotations

import struct
import time
import tracemalloc
from pathlib import Path

import pytest
from gguf_craft import seed, smollm2_header, tiny, walk_seed, write
from gguf_property import MEMORY_FACTOR, MEMORY_SLACK, open_or_error
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gpt4all_core import gguf
from gpt4all_core.errors import GGUFError
from gpt4all_core.gguf import GGMLType
from gpt4all_core.gguf import GGUFValueType as V

# ---------------------------------------------------------------------------------------------------------------
# Memory: a small file claiming huge counts fails fast; dense files stay within a small multiple of their size


def _measure(path: Path) -> tuple[GGUFError | None, int, float]:
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        try:
            gguf.open(path).close()
            err = None
        except GGUFError as e:
            err = e
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return err, peak, seconds


def _claims(n: int) -> dict[str, tuple[bytes, int]]:
    """Files of a few KB that claim n items somewhere: (data, offset of the claim)."""
    pad = bytes(range(256)) * 16  # 4 KB of plausible-looking junk after the claim
    head = b"GGUF" + struct.pack("<I", 3)
    key = struct.pack("<Q", 1) + b"k"
    files = {
        "tensors": (head + struct.pack("<QQ", n, 0) + pad, 8),
        "keys": (head + struct.pack("<QQ", 0, n) + pad, 16),
        "key length": (head + struct.pack("<QQQ", 0, 1, n) + pad, 24),
        "string length": (head + struct.pack("<QQ", 0, 1) + key + struct.pack("<IQ", V.STRING, n) + pad, 37),
    }
    for name, elem in [("strings", V.STRING), ("uint8s", V.UINT8), ("float64s", V.FLOAT64), ("arrays", V.ARRAY),
                       ("bools", V.BOOL)]:
        files[name] = (head + struct.pack("<QQ", 0, 1) + key + struct.pack("<IIQ", V.ARRAY, elem, n) + pad, 41)
    # inside an array of arrays that is itself fine
    files["inner strings"] = (head + struct.pack("<QQ", 0, 1) + key + struct.pack("<IIQ", V.ARRAY, V.ARRAY, 1)
                              + struct.pack("<IQ", V.STRING, n) + pad, 53)
    return files


@pytest.mark.parametrize("n", [2**40, 2**62, 2**64 - 1])
@pytest.mark.parametrize("what", list(_claims(1)))
def test_absurd_claims_fail_fast_in_small_memory(tmp_path, what, n):
    data, at = _claims(n)[what]
    path = write(tmp_path / "claim.gguf", data)
    err, peak, seconds = _measure(path)
    assert isinstance(err, GGUFError) and err.offset == at and "cannot fit" in str(err), str(err)
    assert peak <= MEMORY_FACTOR * len(data) + MEMORY_SLACK, peak
    assert seconds < 1.0


def _dense(n: int) -> dict[str, bytes]:
    """Valid files packed with the smallest items, each costing the most Python objects per byte."""
    def s(raw: bytes) -> bytes:
        return struct.pack("<Q", len(raw)) + raw

    head = b"GGUF" + struct.pack("<I", 3)
    one_key = head + struct.pack("<QQ", 0, 1) + s(b"k")

    def array(elem: int, items: bytes, count: int = n) -> bytes:
        return one_key + struct.pack("<IIQ", V.ARRAY, elem, count) + items

    tensors = head + struct.pack("<QQ", n, 0) + b"".join(
        s(b"%06d" % i) + struct.pack("<IQIQ", 1, 0, GGMLType.F32, 0) for i in range(n))
    tensors += bytes(-len(tensors) % 32)
    scalars = head + struct.pack("<QQ", n, 0) + b"".join(
        s(b"%06d" % i) + struct.pack("<IIQ", 0, GGMLType.F32, 32 * i) for i in range(n))
    scalars += bytes(-len(scalars) % 32 + 32 * n)
    return {
        "empty numeric arrays": array(V.ARRAY, struct.pack("<IQ", V.UINT8, 0) * n),
        "one-bool arrays": array(V.ARRAY, (struct.pack("<IQ", V.BOOL, 1) + b"\1") * n),
        "empty string arrays": array(V.ARRAY, struct.pack("<IQ", V.STRING, 0) * n),
        "empty arrays of arrays": array(V.ARRAY, struct.pack("<IQ", V.ARRAY, 0) * n),
        "8-deep arrays": array(V.ARRAY, (struct.pack("<IQ", V.ARRAY, 1) * 6 + struct.pack("<IQ", V.UINT8, 0))
                               * (n // 7), n // 7),
        "4-byte characters": array(V.STRING, s("🦙".encode()) * n),
        "invalid UTF-8 bytes": array(V.STRING, s(b"\x80") * n),
        "two-letter strings": array(V.STRING, b"".join(s(b"%02d" % (i % 100)) for i in range(n))),
        "keys": head + struct.pack("<QQ", 0, n) + b"".join(s(b"%06d" % i) + struct.pack("<IB", V.UINT8, 1)
                                                           for i in range(n)),
        "empty tensors": tensors,
        "scalar tensors": scalars,
    }


@pytest.mark.parametrize("what", list(_dense(1)))
def test_dense_files_stay_within_memory_bound(tmp_path, what):
    data = _dense(20_000)[what]
    assert len(data) > 150_000
    path = write(tmp_path / "dense.gguf", data)
    err, peak, seconds = _measure(path)
    assert err is None, str(err)
    assert peak <= MEMORY_FACTOR * len(data) + MEMORY_SLACK, (peak, len(data), peak / len(data))
    assert seconds < 5.0


def test_real_files_stay_within_memory_bound(tmp_path, smollm2_path):
    for data in (seed("vocab"), smollm2_header()):
        path = write(tmp_path / "real.gguf", data)
        err, peak, _ = _measure(path)
        assert err is None or "past the end" in str(err)
        assert peak <= MEMORY_FACTOR * len(data) + MEMORY_SLACK, (peak, len(data))
    err, peak, _ = _measure(smollm2_path)  # the whole model: the mapping is not Python memory
    assert err is None and peak <= MEMORY_FACTOR * len(smollm2_header()) + MEMORY_SLACK


# ---------------------------------------------------------------------------------------------------------------
# Hypothesis: mutate valid files byte by byte and field by field

SMALL_SEEDS = ["tiny", "rich", "v2", "writer"]
REAL_SEEDS = ["vocab", "smollm2-kv"]
EXTREMES = {
    1: [0, 1, 2, 0x7F, 0x80, 0xFF],
    2: [0, 1, 0x7FFF, 0x8000, 0xFFFF],
    4: [0, 1, 5, 13, 2**31 - 1, 2**31, 2**32 - 1],
    8: [0, 1, 5, 2**31, 2**32 - 1, 2**32, 2**62, 2**63 - 1, 2**63, 2**64 - 1],
}
PROFILE = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mutants") / "mutant.gguf"


@st.composite
def byte_mutants(draw, names: list[str]) -> bytes:
    name = draw(st.sampled_from(names))
    data = bytearray(seed(name))
    layout = walk_seed(name)
    starts = sorted(layout.starts - {0})  # the magic is tested enough: spare most mutants from dying there
    for _ in range(draw(st.integers(1, 4))):
        # mostly at or just after the start of a field, else anywhere in the header, else anywhere
        where = draw(st.integers(0, 3))
        if where == 0:
            pos = draw(st.integers(0 if draw(st.integers(0, 15)) == 0 else min(4, len(data)), len(data)))
        elif where == 1:
            pos = draw(st.integers(4, layout.header_end))
        else:
            pos = draw(st.sampled_from(starts)) + draw(st.integers(0, 8))
        pos = min(pos, len(data))
        op = draw(st.sampled_from(["set", "set", "set", "insert", "delete", "truncate"]))
        if op == "set" and pos < len(data):
            data[pos] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]) | st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos: pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


@st.composite
def field_mutants(draw, names: list[str]) -> bytes:
    name = draw(st.sampled_from(names))
    data = bytearray(seed(name))
    ints = walk_seed(name).ints
    structural = [f for f in ints if f[2] != "item length"] or ints
    for _ in range(draw(st.integers(1, 2))):
        offset, width, _ = draw(st.sampled_from(structural) | st.sampled_from(ints))
        value = draw(st.sampled_from(EXTREMES[width]) | st.integers(0, 2 ** (8 * width) - 1))
        data[offset: offset + width] = value.to_bytes(width, "little")
    return bytes(data)


def _outcome(err: GGUFError | None) -> None:
    """Tell the statistics (pytest --hypothesis-show-statistics) what became of the mutant."""
    event("opened" if err is None else "GGUFError: " + (err.field or "").split(" ")[0] + ": " + " ".join(
        w for w in str(err).split(": ")[-1].split() if not any(c.isdigit() for c in w))[:60])


@settings(PROFILE, max_examples=1000)
@given(data=byte_mutants(SMALL_SEEDS))
def test_byte_mutations_of_small_files(scratch, data):
    _outcome(open_or_error(write(scratch, data), data, measure=True))


@settings(PROFILE, max_examples=1000)
@given(data=field_mutants(SMALL_SEEDS))
def test_field_mutations_of_small_files(scratch, data):
    _outcome(open_or_error(write(scratch, data), data, measure=True))


@settings(PROFILE, max_examples=100)
@given(data=byte_mutants(REAL_SEEDS))
def test_byte_mutations_of_real_files(scratch, data):
    _outcome(open_or_error(write(scratch, data), data, measure=True))


@settings(PROFILE, max_examples=100)
@given(data=field_mutants(REAL_SEEDS))
def test_field_mutations_of_real_files(scratch, data):
    _outcome(open_or_error(write(scratch, data), data, measure=True))


def test_the_property_catches_foreign_exceptions(tmp_path, monkeypatch):
    """The property is not vacuous: an exception other than GGUFError gets through it."""
    data = tiny().data
    path = write(tmp_path / "ok.gguf", data)

    def broken(path):
        raise KeyError("oops")

    monkeypatch.setattr(gguf, "open", broken)
    with pytest.raises(KeyError):
        open_or_error(path, data)
