"""BERT model folders for the converter and model tests: MiniLM's Hugging Face files (fetched by
./dev.sh test) and tiny random-weight Hugging Face BERT folders written here, whose files a test
can then break one at a time."""
from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fixture_paths import TEST_DATA, need
from safetensors.numpy import save_file

MINILM_NAME = "all-MiniLM-L6-v2"


def minilm_folder() -> Path:
    return need(TEST_DATA / MINILM_NAME)


@contextmanager
def private_default_embedding_model(folder: Path, **more_env: str):
    """The default embedding model converted into a private cache (folder) from MiniLM's test folder,
    not the installed package; more_env sets further variables for as long."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPT4ALL_CORE_CACHE", str(folder))
        mp.setenv("GPT4ALL_CORE_MINILM_SOURCE", str(minilm_folder()))
        for name, value in more_env.items():
            mp.setenv(name, value)
        yield folder


TINY_VOCAB = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog",
              "##s", "##ing", "run", ".", ",", "a", "hello", "world"]
TINY_CONFIG = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2,
               "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 16,
               "vocab_size": len(TINY_VOCAB), "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu",
               "position_embedding_type": "absolute", "pad_token_id": 0}


def hf_tensors(config: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights with Hugging Face BertModel names for config."""
    rng = np.random.default_rng(seed)
    e, ff = config["hidden_size"], config["intermediate_size"]

    def normal(*shape, scale=0.5, center=0.0):
        return (center + scale * rng.standard_normal(shape)).astype(np.float32)

    t = {"embeddings.word_embeddings.weight": normal(config["vocab_size"], e),
         "embeddings.position_embeddings.weight": normal(config["max_position_embeddings"], e),
         "embeddings.token_type_embeddings.weight": normal(config["type_vocab_size"], e),
         "embeddings.LayerNorm.weight": normal(e, scale=0.1, center=1), "embeddings.LayerNorm.bias": normal(e, scale=0.1),
         "embeddings.position_ids": np.arange(config["max_position_embeddings"], dtype=np.int64)[None],
         "pooler.dense.weight": normal(e, e), "pooler.dense.bias": normal(e)}
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name, (rows, cols) in {"attention.self.query": (e, e), "attention.self.key": (e, e),
                                   "attention.self.value": (e, e), "attention.output.dense": (e, e),
                                   "intermediate.dense": (ff, e), "output.dense": (e, ff)}.items():
            t[p + name + ".weight"] = normal(rows, cols, scale=cols ** -0.5)
            t[p + name + ".bias"] = normal(rows, scale=0.1)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + name + ".weight"] = normal(e, scale=0.1, center=1)
            t[p + name + ".bias"] = normal(e, scale=0.1)
    return t


def tiny_bert_folder(path: Path, config_changes: dict | None = None, tensors: dict | None = None,
                     vocab: list[str] | None = TINY_VOCAB) -> Path:
    """A Hugging Face BERT folder (config.json, model.safetensors, vocab.txt) of random weights;
    config_changes update the config (None values delete keys), tensors replace the weights,
    vocab None leaves vocab.txt out."""
    path.mkdir(parents=True, exist_ok=True)
    config = {**TINY_CONFIG, **(config_changes or {})}
    config = {k: v for k, v in config.items() if v is not None}
    (path / "config.json").write_text(json.dumps(config))
    save_file(hf_tensors(TINY_CONFIG) if tensors is None else tensors, str(path / "model.safetensors"))
    if vocab is not None:
        (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return path


def copy_folder(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> Path:
    """src's files in dst (symlinks for the big ones), without skip."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.name not in skip:
            if f.stat().st_size > 1 << 20:
                (dst / f.name).symlink_to(f.resolve())
            else:
                shutil.copy(f, dst / f.name)
    return dst
