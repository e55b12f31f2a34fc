"""The property every GGUF input must satisfy, shared by the hypothesis tests and the fuzz target:
``gguf.open`` succeeds with every tensor aligned, inside the file, readable and not overlapping another,
or raises GGUFError that names an offset inside the file and a field, within a memory bound. Anything
else (another exception, a GGUFError that does not say where, too much memory) fails."""
from __future__ import annotations

import tracemalloc
from pathlib import Path

from gpt4all_core import gguf
from gpt4all_core.errors import GGUFError

# Memory a parse may take: this multiple of the file's size, plus a fixed slack.
MEMORY_FACTOR = 64
MEMORY_SLACK = 1 << 20


def open_or_error(path: str | Path, data: bytes, *, measure: bool = False) -> GGUFError | None:
    """Check the property for ``path``, whose bytes are ``data``: None if it opened, else its GGUFError."""
    if measure:
        tracemalloc.start()
    try:
        try:
            f = gguf.open(path)
        except GGUFError as e:
            assert e.offset is not None and 0 <= e.offset <= len(data), f"GGUFError that does not say where: {e}"
            assert e.field, f"GGUFError without a field: {e}"
            return e
        finally:
            if measure:
                _, peak = tracemalloc.get_traced_memory()
                assert peak <= MEMORY_FACTOR * len(data) + MEMORY_SLACK, f"parsing {len(data)} bytes took {peak} bytes of memory"
    finally:
        if measure:
            tracemalloc.stop()
    with f:
        assert f.data_offset % f.alignment == 0 and f.alignment & (f.alignment - 1) == 0
        spans = []
        for name, t in f.tensors.items():
            assert t.name == name
            assert t.offset % f.alignment == 0 and t.offset >= f.data_offset >= f.header_size, (name, t)
            assert 0 <= t.offset <= t.offset + t.nbytes <= len(data), f"tensor {name!r} outside the file"
            arr = t.data
            assert arr.nbytes == t.nbytes and arr.tobytes() == data[t.offset: t.offset + t.nbytes], name
            del arr
            if t.nbytes:
                spans.append((t.offset, t.offset + t.nbytes))
        spans.sort()
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])), "tensors overlap"
        repr(f)
    return None
