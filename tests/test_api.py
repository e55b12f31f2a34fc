"""The gpt4all-package API (GPT4All, generate, streaming, chat_session) and the Node-style functions,
on a small random-weight llama (mechanics) and on SmolLM2 (a real answer)."""
from __future__ import annotations

import numpy as np
import pytest
from model_files import SMOLLM2, random_model, requantized_smollm2

from gpt4all_core import GPT4All, create_completion, load_model
from gpt4all_core.chat import ChatTemplateError
from gpt4all_core.engine.generate import TextStream
from gpt4all_core.engine.session import Session
from gpt4all_core.errors import GPT4AllCoreError

TEMPLATE = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}</s>{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")


@pytest.fixture(scope="module")
def model():
    with GPT4All(str(random_model("llama")), n_ctx=256) as m:
        yield m


def greedy_tokens(m: GPT4All, tokens: list[int], n: int) -> list[int]:
    """Greedy continuation straight from the engine, for comparison."""
    s = Session(m.model, n_ctx=256)
    logits, out = s.prompt(tokens), []
    for _ in range(n):
        out.append(int(np.argmax(logits)))
        logits = s.feed([out[-1]])
    return out


def test_generate_is_the_engines_greedy_continuation(model):
    ids = []
    text = model.generate("Once upon a time", max_tokens=12, temp=0, repeat_penalty=1.0,
                          callback=lambda t, s: ids.append(t) is None)
    prompt = model.model.tokenizer.encode("Once upon a time", add_special=True)
    expected = greedy_tokens(model, prompt, 12)
    eog = model._eog
    expected = expected[:next((i for i, t in enumerate(expected) if t in eog), len(expected))]
    assert ids == expected
    assert text == model.model.tokenizer.decode(expected, strip_space_prefix=False)


def test_streaming_gives_the_same_text(model):
    whole = model.generate("The weather today", max_tokens=15, temp=0)
    pieces = list(model.generate("The weather today", max_tokens=15, temp=0, streaming=True))
    assert "".join(pieces) == whole and len(pieces) > 1


def test_callback_false_stops(model):
    seen = []
    model.generate("Count with me", max_tokens=50, temp=0, callback=lambda t, s: seen.append(t) or len(seen) < 3)
    assert len(seen) == 3


def test_n_predict_overrides_max_tokens(model):
    seen = []
    model.generate("Hello", max_tokens=50, n_predict=4, temp=0, repeat_penalty=1.0,
                   callback=lambda t, s: seen.append(t) is None)
    assert 1 <= len(seen) <= 4


def test_seeded_sampling_repeats_and_differs():
    """Two models, same file: temp > 0 draws differ between runs (random seed) but the API has no
    seed parameter, as in the gpt4all package; the engine sampler is seeded (tests/engine)."""
    with GPT4All(str(random_model("llama")), n_ctx=64) as m:
        runs = {m.generate("Hi", max_tokens=10, temp=1.5, top_k=0, top_p=1.0) for _ in range(4)}
    assert len(runs) > 1


def test_chat_session_history_and_prefix_reuse(model):
    fed: list[int] = []
    session = model._live_session()
    original = session._feed  # what prompt() evaluates after the reused prefix

    def counting_feed(tokens, progress=None):
        fed.append(len(tokens))
        return original(tokens, progress)

    session._feed = counting_feed
    try:
        with model.chat_session("You are terse.", chat_template=TEMPLATE):
            first = model.generate("What is two plus two?", max_tokens=6, temp=0)
            after_first = session.n_past
            fed.clear()
            second = model.generate("And three plus three?", max_tokens=6, temp=0)
            history = model.current_chat_session
    finally:
        session._feed = original
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user", "assistant"]
    assert history[2]["content"] == first and history[4]["content"] == second
    # the second turn evaluated only what follows the first turn's prompt (whose tokens it starts with)
    from gpt4all_core.chat import ChatTemplate
    tok, render = model.model.tokenizer, ChatTemplate(TEMPLATE).render
    first_prompt = tok.encode(render(history[:2]), add_special=True, parse_special=True)
    second_prompt = tok.encode(render(history[:4]), add_special=True, parse_special=True)
    assert second_prompt[:len(first_prompt)] == first_prompt and after_first > len(first_prompt)
    assert fed[0] <= len(second_prompt) - len(first_prompt)


def test_current_chat_session_settable(model):
    with model.chat_session(chat_template=TEMPLATE):
        model.current_chat_session = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
        model.generate("c", max_tokens=2)
        assert [m["content"] for m in model.current_chat_session][:3] == ["a", "b", "c"]
        with pytest.raises(ValueError, match="messages\\[0\\]"):
            model.current_chat_session = [{"role": "wizard", "content": "x"}]
    with pytest.raises(ValueError, match="inside chat_session"):
        model.current_chat_session = []


def test_chat_template_errors(model):
    with pytest.raises(ChatTemplateError, match="no chat template"):
        with model.chat_session():
            pass
    with pytest.raises(ChatTemplateError, match="line 1"):
        with model.chat_session(chat_template="{% for m in messages %}"):
            pass
    with model.chat_session(chat_template="{{ ''.__class__.__mro__[1].__subclasses__() }}"):
        with pytest.raises(ChatTemplateError):  # the sandbox refuses, as a template error
            model.generate("x", max_tokens=1)
    with model.chat_session(chat_template="{{ raise_exception('no system messages') }}"):
        with pytest.raises(ChatTemplateError, match="no system messages"):
            model.generate("x", max_tokens=1)


def test_generation_runs_past_a_full_context():
    """Generation never stops because the context filled: old tokens are erased instead."""
    with GPT4All(str(random_model("llama")), n_ctx=16) as m:
        m._eog = frozenset()  # random weights might draw EOS; here only the count matters
        seen = []
        m.generate("Go on", max_tokens=60, temp=0.8, callback=lambda t, s: seen.append(t) is None)
        assert len(seen) == 60 and m._live_session().n_erased > 0


def test_bad_arguments(model, tmp_path):
    for kwargs, name in ((dict(max_tokens=-1), "max_tokens"), (dict(temp=-0.1), "temp"), (dict(top_p=1.5), "top_p"),
                         (dict(min_p=-1), "min_p"), (dict(top_k=-2), "top_k"), (dict(n_batch=0), "n_batch"),
                         (dict(repeat_penalty=0), "repeat_penalty")):
        with pytest.raises(ValueError, match=name):
            model.generate("x", **kwargs)
    with pytest.raises(ValueError, match="n_ctx"):
        model.generate("word " * 400)
    with pytest.raises(FileNotFoundError, match="missing-model.gguf"):
        GPT4All("missing-model", model_path=tmp_path)
    with pytest.raises(ValueError, match="device 'tpu'"):
        GPT4All(str(random_model("llama")), device="tpu")
    with pytest.raises(ValueError, match="n_ctx"):
        GPT4All(str(random_model("llama")), n_ctx=0)


def test_close_and_context_manager():
    m = GPT4All(str(random_model("llama")), n_ctx=32)
    with m:
        assert m.generate("a", max_tokens=2, temp=0) is not None
    with pytest.raises(GPT4AllCoreError, match="closed"):
        m.generate("a", max_tokens=2)


def test_node_style_functions():
    m = load_model(random_model("llama"), n_ctx=128)
    try:
        m.model.gguf.metadata["tokenizer.chat_template"] = TEMPLATE  # give the random model a template
        out = create_completion(m, [{"role": "system", "content": "s"}, {"role": "user", "content": "hello"}],
                                max_tokens=5, temp=0)
    finally:
        m.close()
    assert out["object"] == "chat.completion" and out["choices"][0]["message"]["role"] == "assistant"
    usage = out["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 1 <= usage["completion_tokens"] <= 5 and usage["prompt_tokens"] > 3
    assert out["choices"][0]["finish_reason"] in ("stop", "length")


def test_text_stream_stop_strings_and_partial_characters(model):
    tok = model.model.tokenizer
    ids = tok.encode("Hi there<|im_end|> ignored", add_special=False)
    stream = TextStream(tok, stop_strings=["<|im_end|>"])
    text = "".join(stream.feed(t) for t in ids) + stream.flush()
    assert text == tok.decode(ids, strip_space_prefix=False).split("<|im_end|>")[0] and stream.done
    assert text.strip() == "Hi there"
    ids = tok.encode("smile 🙂 now", add_special=False)
    stream = TextStream(tok)
    pieces = [stream.feed(t) for t in ids]
    assert "".join(pieces) + stream.flush() == tok.decode(ids, strip_space_prefix=False)
    assert sum(len(tok.token_to_piece(t)) == 1 and tok.token_to_piece(t)[0] >= 0x80 for t in ids) >= 4  # byte tokens
    assert all("\ufffd" not in p for p in pieces)  # never half a character


def test_smollm2_answers_paris():
    """The F16 SmolLM2 (no quantization noise), greedy, in its own chat template."""
    with GPT4All(str(requantized_smollm2("F16")), n_ctx=512) as m:
        with m.chat_session():
            answer = m.generate("What is the capital of France?", max_tokens=32, temp=0)
    assert "Paris" in answer


def test_smollm2_q4_1_chat_streams():
    with GPT4All(SMOLLM2.name, model_path=SMOLLM2.parent, n_ctx=512) as m:
        with m.chat_session(system_message="You are a helpful assistant."):
            pieces = list(m.generate("Name a primary colour.", max_tokens=24, temp=0, streaming=True))
    assert pieces and "<|im_end|>" not in "".join(pieces)


def test_gemma3_base_model_generates_but_has_no_chat_template(gemma3_path):
    """Gemma 3 270M is a base model: generate() continues text (greedy: the engine's own greedy
    tokens, which tests/models/test_gemma3.py holds to llama.cpp's); chat_session() needs a
    template to be given."""
    with GPT4All(str(gemma3_path), n_ctx=256) as m:
        assert m.model.chat_template is None
        text = m.generate("The capital of France is", max_tokens=24, temp=0, repeat_penalty=1.0)
        assert text.startswith(" the capital of the country of France. It is the largest city in France.")
        pieces = list(m.generate("The capital of France is", max_tokens=24, temp=0, repeat_penalty=1.0,
                                 streaming=True))
        assert "".join(pieces) == text
        with pytest.raises(ChatTemplateError, match="gemma-3-270m-q4_k_m.gguf has no chat template.*chat_template="):
            with m.chat_session():
                pass
        gemma_turns = ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m.role == 'assistant' "
                       "else m.role }}\n{{ m.content }}<end_of_turn>\n{% endfor %}"
                       "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
        with m.chat_session(chat_template=gemma_turns):
            reply = m.generate("What is the capital of France?", max_tokens=16, temp=0)
            assert [t["role"] for t in m.current_chat_session] == ["user", "assistant"]
        assert "<end_of_turn>" not in reply and "<start_of_turn>" not in reply


def test_stop_strings_end_the_reply(model):
    """End-of-turn markers typed out as text stop generation like their tokens do."""
    assert "</s>" in model._stop_strings  # the llama-spm vocabulary's EOS text
    full = model.generate("Tell me a story", max_tokens=20, temp=0)
    stop = full[6:9]
    saved = model._stop_strings
    model._stop_strings = [stop]
    try:
        cut = model.generate("Tell me a story", max_tokens=20, temp=0)
    finally:
        model._stop_strings = saved
    assert cut == full[:full.index(stop)]
