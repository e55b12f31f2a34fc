"""The fuzz target's TestOneInput, run without atheris: over its seed corpus and a few hundred mutants.

The mutations are libFuzzer's kinds (bytes changed, inserted, erased, chunks copied, integers replaced
by extremes, files crossed over), drawn from a fixed seed so that a failure reproduces.
"""
from __future__ import annotations

import importlib.util
import random
import struct
import sys
from pathlib import Path

import pytest

from gpt4all_core import gguf
from gpt4all_core.errors import GGUFError


def _load_target():
    spec = importlib.util.spec_from_file_location("fuzz_gguf", Path(__file__).with_name("fuzz_gguf.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fuzz_gguf = _load_target()
EXTREMES = [0, 1, 2**7, 2**8 - 1, 2**15, 2**16 - 1, 2**31, 2**32 - 1, 2**32, 2**62, 2**63, 2**64 - 1]


def mutate(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 5)):
        pos = rng.randint(0, len(out))
        op = rng.randrange(8)
        if op == 0 and pos < len(out):  # flip a bit
            out[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and pos < len(out):  # set a byte
            out[pos] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        elif op == 2:  # insert bytes
            out[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif op == 3:  # erase bytes
            del out[pos: pos + rng.randint(1, 16)]
        elif op == 4:  # truncate
            del out[pos:]
        elif op == 5 and len(out) >= 8:  # an integer field replaced by an extreme, mostly at an aligned spot
            width = rng.choice([4, 8])
            at = min(pos - pos % (4 if rng.random() < 0.8 else 1), len(out) - width)
            out[at: at + width] = struct.pack("<Q", rng.choice(EXTREMES))[:width]
        elif op == 6 and len(out) > 2:  # copy a chunk of the file over another place
            a, b = sorted(rng.sample(range(len(out)), 2))
            chunk = out[a:b][:64]
            out[pos: pos + len(chunk)] = chunk
        elif op == 7:  # cross over with another seed
            other = rng.choice(others)
            cut = rng.randint(0, len(other))
            out = out[:pos] + other[cut:]
    return bytes(out)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> list[bytes]:
    directory = tmp_path_factory.mktemp("corpus")
    paths = fuzz_gguf.make_corpus(directory)
    assert sorted(Path(p).name for p in paths) == sorted(p.name for p in directory.iterdir())
    return [Path(p).read_bytes() for p in sorted(paths)]


def test_target_runs_without_atheris(seeds, monkeypatch):
    monkeypatch.setitem(sys.modules, "atheris", None)  # any "import atheris" now fails
    target = _load_target()
    assert target.TestOneInput(seeds[0]) is None and target.check(b"GGUF") is False


def test_seed_corpus_opens(seeds):
    assert len(seeds) >= 5 and all(len(s) < 4096 for s in seeds)  # small, for libFuzzer's default max_len
    for data in seeds:
        assert fuzz_gguf.check(data, measure=True) is True
        assert fuzz_gguf.TestOneInput(data) is None


def test_make_corpus_command_line(tmp_path):
    fuzz_gguf.main(["fuzz_gguf.py", "--make-corpus", str(tmp_path / "c")])
    files = sorted((tmp_path / "c").iterdir())
    assert len(files) >= 5
    for path in files:
        with gguf.open(path) as f:
            assert f.metadata["general.architecture"]


def test_mutants_open_or_raise_gguf_error(seeds):
    rng = random.Random(0x6767_7566)
    outcomes = {True: 0, False: 0}
    for _ in range(600):
        data = mutate(rng, rng.choice(seeds), seeds)
        fuzz_gguf.TestOneInput(data)
        outcomes[fuzz_gguf.check(data, measure=True)] += 1
    # both outcomes happen: the mutants are neither all harmless nor all rejected at the magic
    assert outcomes[True] >= 10 and outcomes[False] >= 300, outcomes


def test_target_reports_foreign_exceptions(seeds, monkeypatch):
    """The target is not vacuous: anything but GGUFError, or a GGUFError that does not say where, escapes."""
    def raises(exc):
        def fake_open(path):
            raise exc
        return fake_open

    monkeypatch.setattr(gguf, "open", raises(IndexError("boom")))
    with pytest.raises(IndexError):
        fuzz_gguf.TestOneInput(seeds[0])
    monkeypatch.setattr(gguf, "open", raises(GGUFError("nowhere")))
    with pytest.raises(AssertionError, match="does not say where"):
        fuzz_gguf.TestOneInput(seeds[0])
    monkeypatch.setattr(gguf, "open", raises(GGUFError("here", offset=0, field="magic")))
    assert fuzz_gguf.check(seeds[0]) is False


def test_target_checks_memory(seeds, monkeypatch):
    def hog(path):
        hoard = bytearray(fuzz_gguf.MEMORY_FACTOR * 4096 + fuzz_gguf.MEMORY_SLACK + 1)
        raise GGUFError(f"held {len(hoard)} bytes", offset=0, field="magic")

    monkeypatch.setattr(gguf, "open", hog)
    with pytest.raises(AssertionError, match="bytes of memory"):
        fuzz_gguf.check(seeds[0][:4096], measure=True)
