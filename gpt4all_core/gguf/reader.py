"""Open a GGUF file: metadata as Python values, tensors as zero-copy views.

``open(path)`` maps the file read-only, parses the header (in Cython, see
``_parse.pyx``) and checks every tensor against the file: known type, whole
blocks per row, aligned, inside the data section, no two overlapping. Tensor
bytes are only touched when a caller reads ``Tensor.data``.
"""
from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from gpt4all_core.errors import GGUFError
from gpt4all_core.gguf._parse import HeaderParser
from gpt4all_core.gguf.types import ELEMENT_DTYPES, TYPE_TRAITS, GGMLType, GGUFValueType, ValueType

DEFAULT_ALIGNMENT = 32
ALIGNMENT_KEY = "general.alignment"


@dataclass(frozen=True, eq=False)
class Tensor:
    """One tensor of a GGUF file.

    ``ne`` is ggml's order (``ne[0]`` is the row length); ``shape`` is numpy's
    (``shape[-1]`` is the row length). ``offset`` is absolute in the file.
    """

    name: str
    type: GGMLType
    ne: tuple[int, ...]
    offset: int
    nbytes: int
    _file: "GGUFFile" = field(repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(reversed(self.ne))

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.ne:
            n *= d
        return n

    @property
    def data(self) -> np.ndarray:
        """A read-only view of the tensor's bytes in the mmap, nothing copied.

        Plain number types (F32, F16, F64, I8..I64) come typed in ``shape``;
        BF16 as uint16 bit patterns in ``shape``; block-quantized types as uint8
        rows of ``shape[:-1] + (row bytes,)``.
        """
        buf = self._file._buffer()
        dtype = ELEMENT_DTYPES.get(self.type)
        if dtype is not None:
            return np.frombuffer(buf, dtype=dtype, count=self.n_elements, offset=self.offset).reshape(self.shape)
        block_size, type_size = TYPE_TRAITS[self.type]
        shape = self.shape or (1,)
        arr = np.frombuffer(buf, dtype=np.uint8, count=self.nbytes, offset=self.offset)
        return arr.reshape(shape[:-1] + (shape[-1] // block_size * type_size,))


class GGUFFile:
    """A parsed GGUF file. Use as a context manager, or call ``close()``.

    ``metadata`` maps keys to Python values: int, float, bool, str; numeric
    arrays as numpy arrays, string arrays as lists of str, arrays of arrays as
    lists. ``types`` maps each key to its GGUF value type (``ArrayType`` for
    arrays), which the writer needs to reproduce a file exactly.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as e:
            raise GGUFError(f"cannot open: {e.strerror}", path=self.path) from e
        try:
            self.file_size = os.fstat(fd).st_size
            if self.file_size == 0:
                raise GGUFError("file is empty", path=self.path, offset=0, field="magic")
            self._mmap: mmap.mmap | None = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        except GGUFError:
            raise  # a ValueError too: not to be wrapped as a mapping failure, losing its offset and field
        except (OSError, ValueError) as e:
            raise GGUFError(f"cannot map: {e}", path=self.path) from e
        finally:
            os.close(fd)
        try:
            self._parse()
        except BaseException:
            self.close()
            raise

    def _parse(self) -> None:
        parser = HeaderParser(self._mmap, self.path)
        try:
            version, metadata, types, key_offsets, infos, header_end = parser.parse()
        finally:
            parser.release()
        self.version: int = version
        self.metadata: dict[str, Any] = metadata
        self.types: dict[str, ValueType] = types
        self.key_offsets: dict[str, int] = key_offsets
        self.header_size: int = header_end
        self.alignment = self._alignment()
        self.data_offset = -(-header_end // self.alignment) * self.alignment
        self.tensors: dict[str, Tensor] = {}
        offset_fields = {}  # where each tensor's data offset sits in the header, for errors
        for name, ne, type_id, rel_offset, dims_offset in infos:
            self.tensors[name] = self._check_tensor(name, ne, type_id, rel_offset, dims_offset)
            offset_fields[name] = _type_field(dims_offset, ne) + 4
        self._check_overlaps(offset_fields)

    def _alignment(self) -> int:
        if ALIGNMENT_KEY not in self.metadata:
            return DEFAULT_ALIGNMENT
        value, vtype = self.metadata[ALIGNMENT_KEY], self.types[ALIGNMENT_KEY]
        if vtype != GGUFValueType.UINT32 or value == 0 or value & (value - 1):
            raise GGUFError(
                f"alignment must be a non-zero power of two stored as UINT32, got {value!r} ({vtype!r})",
                path=self.path, offset=self.key_offsets[ALIGNMENT_KEY], field=ALIGNMENT_KEY,
            )
        return value

    def _check_tensor(self, name: str, ne: tuple[int, ...], type_id: int, rel_offset: int, dims_offset: int) -> Tensor:
        type_offset = _type_field(dims_offset, ne)

        def fail(message: str, at: int) -> GGUFError:
            return GGUFError(message, path=self.path, offset=at, field=f"tensor {name!r}")

        try:
            ggml_type = GGMLType(type_id)
            block_size, type_size = TYPE_TRAITS[ggml_type]
        except (ValueError, KeyError):
            raise fail(f"unknown ggml type {type_id}", type_offset) from None
        row_length = ne[0] if ne else 1
        if row_length % block_size:
            raise fail(f"row length {row_length} is not a multiple of the {ggml_type.name} block size {block_size}",
                       dims_offset if ne else dims_offset - 4)
        n_elements = 1
        extent = 1  # the elements without the empty dimensions: numpy must shape even an empty tensor
        for d in ne:
            n_elements *= d
            extent *= max(d, 1)
        if extent * type_size >= 2**63:
            raise fail(f"dimensions {ne} overflow int64", dims_offset)
        nbytes = n_elements // block_size * type_size
        if rel_offset % self.alignment:
            raise fail(f"data offset {rel_offset} is not a multiple of the alignment {self.alignment}", type_offset + 4)
        offset = self.data_offset + rel_offset
        if offset + nbytes > self.file_size:
            raise fail(
                f"data [{offset}, {offset + nbytes}) runs past the end of the file ({self.file_size} bytes)",
                type_offset + 4,
            )
        return Tensor(name, ggml_type, ne, offset, nbytes, self)

    def _check_overlaps(self, offset_fields: dict[str, int]) -> None:
        spans = sorted((t.offset, t.offset + t.nbytes, t.name) for t in self.tensors.values() if t.nbytes)
        for (start_a, end_a, name_a), (start_b, end_b, name_b) in zip(spans, spans[1:]):
            if start_b < end_a:
                bad = max(name_a, name_b, key=offset_fields.__getitem__)  # blame the later in the header
                raise GGUFError(
                    f"tensor data of {name_a!r} [{start_a}, {end_a}) and {name_b!r} [{start_b}, {end_b}) overlap",
                    path=self.path, offset=offset_fields[bad], field=f"tensor {bad!r}",
                )

    def _buffer(self) -> mmap.mmap:
        if self._mmap is None:
            raise ValueError(f"{self.path}: GGUF file is closed")
        return self._mmap

    @property
    def architecture(self) -> str | None:
        return self.metadata.get("general.architecture")

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    def __getitem__(self, key: str) -> Any:
        try:
            return self.metadata[key]
        except KeyError:
            raise KeyError(f"{self.path}: no metadata key {key!r}") from None

    def __contains__(self, key: str) -> bool:
        return key in self.metadata

    def __iter__(self) -> Iterator[str]:
        return iter(self.metadata)

    def close(self) -> None:
        """Unmap the file. Tensor views still alive keep the mapping until they go."""
        if self._mmap is not None:
            try:
                self._mmap.close()
            except BufferError:
                pass  # numpy views export the buffer; the mapping ends with the last of them
            self._mmap = None

    def __enter__(self) -> "GGUFFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"GGUFFile({self.path!r}, version={self.version}, architecture={self.architecture!r}, "
            f"{len(self.metadata)} keys, {len(self.tensors)} tensors)"
        )


def _type_field(dims_offset: int, ne: tuple[int, ...]) -> int:
    """Offset of a tensor info's type field: after its dims (n_dims is just before them); the data
    offset field follows the type's 4 bytes."""
    return dims_offset + 8 * len(ne)


def open(path: str | os.PathLike) -> GGUFFile:  # noqa: A001 - gguf.open() reads like gzip.open()
    """Open and check a GGUF file; see ``GGUFFile``."""
    return GGUFFile(path)
