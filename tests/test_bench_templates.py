"""Model templates (gpt4all_core.bench.random_model.write_template / write_random_like): a model that
cannot travel to the GPU machine goes as its metadata and tensor list, and comes back there as a
file of the same tensors, types and shapes with random values."""
from __future__ import annotations

import numpy as np
import pytest

from gpt4all_core import gguf
from gpt4all_core.bench.random_model import TEMPLATE_KEY, write_random_like, write_template
from gpt4all_core.errors import GGUFError
from gpt4all_core.models import load
from model_files import random_model


@pytest.fixture(scope="module")
def source():
    return random_model("llama", n_embd=256, n_ff=512, qtype="Q4_K_M", tied=True)  # Q4_K, Q6_K, F32


def test_template_holds_metadata_and_tensor_list_only(source, tmp_path):
    template = tmp_path / "m.template.gguf"
    write_template(source, template)
    with gguf.open(source) as src, gguf.open(template) as tpl:
        assert not tpl.tensors
        assert template.stat().st_size < src.file_size
        lines = tpl.metadata[TEMPLATE_KEY]
        assert [line.split()[0] for line in lines] == list(src.tensors)
        for line in lines:
            name, kind, *dims = line.split()
            assert kind == src.tensors[name].type.name
            assert tuple(map(int, dims)) == src.tensors[name].shape
        for key, value in src.metadata.items():
            assert tpl.types[key] == src.types[key]
            assert np.array_equal(tpl.metadata[key], value) if isinstance(value, np.ndarray) else tpl.metadata[key] == value


def test_random_like_has_the_same_tensors_and_other_values(source, tmp_path):
    template, like = tmp_path / "m.template.gguf", tmp_path / "like.gguf"
    write_template(source, template)
    write_random_like(template, like, seed=3, threads=2)
    with gguf.open(source) as src, gguf.open(like) as out:
        assert TEMPLATE_KEY not in out.metadata
        assert set(out.metadata) == set(src.metadata)
        assert list(out.tensors) == list(src.tensors)
        kinds = set()
        for name, t in src.tensors.items():
            o = out.tensors[name]
            assert (o.type, o.shape, o.nbytes) == (t.type, t.shape, t.nbytes)
            kinds.add(t.type.name)
            if t.type.name != "F32":  # quantized blocks: random, so unlike the source's
                assert not np.array_equal(o.data, t.data)
        assert {"Q4_K", "Q6_K", "F32"} <= kinds
    with load(like) as model:  # a model our loader takes, with logits of random weights
        tokens = np.array(model.tokenizer.encode("Hello there", add_special=True))
        pos = np.arange(len(tokens))
        logits = model.decoder.forward(model.new_cache(16), tokens, pos, pos, len(tokens), n_logits=1)
    assert np.isfinite(logits).all() and logits.std() > 0


def test_random_like_is_reproducible(source, tmp_path):
    template = tmp_path / "m.template.gguf"
    write_template(source, template)
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    write_random_like(template, a, seed=1, threads=1)
    write_random_like(template, b, seed=1, threads=3)
    assert a.read_bytes() == b.read_bytes()


def test_random_like_refuses_a_plain_model(source, tmp_path):
    with pytest.raises(GGUFError, match=TEMPLATE_KEY.replace(".", r"\.")):
        write_random_like(source, tmp_path / "x.gguf")
