"""The reader's promises: zero-copy read-only views, no tensor data read at open, clean close."""
from __future__ import annotations

import mmap
import struct

import numpy as np
import pytest

from gpt4all_core import gguf
from gpt4all_core.errors import GGUFError
from gpt4all_core.gguf import GGMLType


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_tensor_data_is_a_read_only_view_of_the_mapping(smollm2_path):
    with gguf.open(smollm2_path) as f:
        t = f.tensors["blk.0.attn_q.weight"]
        data = t.data
        assert t.type == GGMLType.Q4_1 and data.dtype == np.uint8
        assert data.shape == (576, 576 // 32 * 20) and data.nbytes == t.nbytes
        assert not data.flags.writeable
        base = data
        while isinstance(base, np.ndarray):
            base = base.base
        assert isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)
        with open(smollm2_path, "rb") as raw:
            raw.seek(t.offset)
            assert raw.read(64) == data.reshape(-1)[:64].tobytes()
        norm = f.tensors["output_norm.weight"].data
        assert norm.dtype == np.float32 and norm.shape == (576,) and np.isfinite(norm).all()


def test_opening_does_not_read_tensor_data(tmp_path):
    """A 4 GiB tensor in a sparse file: opening maps it but touches none of it."""
    path = tmp_path / "huge.gguf"
    n = 1 << 30
    name = b"huge.weight"
    header = b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + struct.pack("<Q", len(name)) + name
    header += struct.pack("<IQIQ", 1, n, GGMLType.F32, 0)
    data_offset = -(-len(header) // 32) * 32
    with open(path, "wb") as f:
        f.write(header.ljust(data_offset, b"\0"))
        f.truncate(data_offset + 4 * n)
    before = rss_bytes()
    with gguf.open(path) as f:
        t = f.tensors["huge.weight"]
        assert (t.nbytes, t.offset, t.shape) == (4 * n, data_offset, (n,))
        view = t.data
        assert view.shape == (n,)
        grown = rss_bytes() - before
        del view
    assert grown < 64 << 20, f"opening grew RSS by {grown} bytes"


def test_close_with_live_views_is_safe(smollm2_path):
    f = gguf.open(smollm2_path)
    view = f.tensors["output_norm.weight"].data
    f.close()
    assert np.isfinite(view).all()  # the mapping lives as long as the view
    with pytest.raises(ValueError, match="closed"):
        f.tensors["output_norm.weight"].data
    f.close()  # twice is fine


def test_errors_name_file_offset_and_field(tmp_path):
    path = tmp_path / "bad.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 3) + b"key" + struct.pack("<I", 99))
    with pytest.raises(GGUFError) as e:
        gguf.open(path)
    type_offset = 4 + 4 + 8 + 8 + 8 + 3  # magic, version, two counts, key length, key
    assert (e.value.path, e.value.offset, e.value.field) == (str(path), type_offset, "metadata key 'key'")
    assert str(e.value).startswith(f"{path}: offset {type_offset}: metadata key 'key': unknown metadata value type 99")


@pytest.mark.parametrize("content, message", [
    (None, "cannot open"),
    (b"", "empty"),
    (b"\x7fELF" + bytes(60), "not a GGUF file"),
])
def test_not_gguf(tmp_path, content, message):
    path = tmp_path / "x.gguf"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(GGUFError, match=message):
        gguf.open(path)


def test_metadata_access(smollm2_path):
    with gguf.open(smollm2_path) as f:
        assert f.architecture == "llama" and "llama.block_count" in f
        assert f["llama.block_count"] == 30 and f.get("missing", 5) == 5
        with pytest.raises(KeyError, match="no metadata key 'missing'"):
            f["missing"]
        assert "SmolLM2" not in repr(f) or "272 tensors" in repr(f)
        assert f.data_offset % f.alignment == 0 and f.header_size <= f.data_offset
