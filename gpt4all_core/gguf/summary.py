"""What `gpt4all-core inspect` shows of a GGUF file: a summary, and the metadata as JSON."""
from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from gpt4all_core.gguf.reader import GGUFFile
from gpt4all_core.gguf.types import ArrayType

ARRAY_HEAD = 8  # items of a long array shown in the JSON dump


def summarize(gf: GGUFFile) -> dict[str, Any]:
    arch = gf.architecture
    params = sum(t.n_elements for t in gf.tensors.values())
    tensor_bytes = sum(t.nbytes for t in gf.tensors.values())
    tokens = gf.get("tokenizer.ggml.tokens")
    return {
        "file": gf.path,
        "file_size": gf.file_size,
        "gguf_version": gf.version,
        "architecture": arch,
        "name": gf.get("general.name"),
        "parameters": params,
        "bits_per_weight": round(8 * tensor_bytes / params, 3) if params else None,
        "tensor_count": len(gf.tensors),
        "tensor_types": dict(Counter(t.type.name for t in gf.tensors.values()).most_common()),
        "context_length": gf.get(f"{arch}.context_length"),
        "block_count": gf.get(f"{arch}.block_count"),
        "embedding_length": gf.get(f"{arch}.embedding_length"),
        "tokenizer": gf.get("tokenizer.ggml.model"),
        "tokenizer_pre": gf.get("tokenizer.ggml.pre"),
        "vocab_size": len(tokens) if tokens is not None else None,
        "chat_template": "tokenizer.chat_template" in gf,
    }


def _jsonable(value: Any, vtype: Any, limit: int | None) -> Any:
    if isinstance(vtype, ArrayType):
        items = list(value[:limit] if limit is not None else value)
        if vtype.items:
            items = [_jsonable(v, t, limit) for v, t in zip(items, vtype.items)]
        items = [v.item() if isinstance(v, np.generic) else v for v in items]
        if limit is not None and len(value) > limit:
            return {"type": repr(vtype), "length": len(value), "head": items}
        return items
    return value


def metadata_json(gf: GGUFFile, array_head: int | None = ARRAY_HEAD) -> dict[str, Any]:
    """All metadata as JSON-able values; arrays longer than ``array_head`` are summarized."""
    return {key: _jsonable(value, gf.types[key], array_head) for key, value in gf.metadata.items()}


def format_summary(s: dict[str, Any]) -> str:
    def human(n: float, unit: str = "") -> str:
        for scale, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
            if n >= scale:
                return f"{n / scale:.1f}{suffix}{unit}"
        return f"{n}{' ' + unit if unit else ''}"

    types = ", ".join(f"{name} ×{count}" for name, count in s["tensor_types"].items())
    tok = s["tokenizer"] or "none"
    if s["tokenizer_pre"]:
        tok += f" (pre-tokenizer {s['tokenizer_pre']})"
    if s["vocab_size"] is not None:
        tok += f", {s['vocab_size']} tokens"
    rows = [
        ("file", f"{s['file']} ({human(s['file_size'], 'B')}, GGUF v{s['gguf_version']})"),
        ("architecture", f"{s['architecture']}" + (f" ({s['name']})" if s["name"] else "")),
        ("parameters", human(s["parameters"]) + (f" ({s['bits_per_weight']} bits per weight)" if s["parameters"] else "")),
        ("tensors", f"{s['tensor_count']}" + (f": {types}" if types else "")),
        ("context length", s["context_length"]),
        ("blocks", s["block_count"]),
        ("embedding", s["embedding_length"]),
        ("tokenizer", tok),
        ("chat template", "yes" if s["chat_template"] else "no"),
    ]
    return "\n".join(f"{k:<15} {v}" for k, v in rows if v is not None)
