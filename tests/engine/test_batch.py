"""The continuous-batching engine on SmolLM2: batched requests get exactly their solo tokens, slots
reuse cached prefixes, cancelled jobs free their slots, the queue is bounded, and the ends of a
reply (stop ids, stop strings, max_tokens, a full context) are reported as OpenAI's finish reasons."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from gpt4all_core import models
from gpt4all_core.engine.batch import BatchEngine, Job, PromptTooLong, QueueFull, TooManyJobs
from gpt4all_core.engine.sampling import SamplingParams

GREEDY = SamplingParams(temp=0)
PROMPTS = ["The capital of France is", "Once upon a time", "def fib(n):", "The best way to learn",
           "1, 2, 3, 4,", "Water boils at", "My favourite colour is"]


@pytest.fixture(scope="module")
def model(smollm2_path):
    with models.load(smollm2_path) as m:
        yield m


def job(model, text, **kw):
    kw.setdefault("max_tokens", 12)
    j = Job(model.tokenizer.encode(text), kw.pop("params", GREEDY), stop_ids=model.tokenizer.eog_ids, **kw)
    j.events = []
    j.on_event = j.events.append
    return j


def text_of(j) -> str:
    return "".join(e.text for e in j.events)


def run(engine, jobs):
    engine.submit(jobs)
    engine.run_until_idle()
    return jobs


def test_batched_jobs_get_their_solo_tokens(model):
    solo = [run(BatchEngine(model, 1, 128), [job(model, p)])[0] for p in PROMPTS]
    engine = BatchEngine(model, 3, 128, n_batch=8)   # 7 jobs on 3 slots: joins and leaves mid-way, split prompts
    batched = run(engine, [job(model, p) for p in PROMPTS])
    for s, b in zip(solo, batched):
        assert b.tokens == s.tokens and text_of(b) == text_of(s) and b.finish_reason == s.finish_reason
    assert engine.stats["steps"] < sum(len(s.tokens) + 1 for s in solo)   # steps were shared


def test_sampled_jobs_with_seeds_are_repeatable_in_any_company(model):
    params = SamplingParams(temp=1.0, top_k=0, top_p=1.0, repeat_penalty=1.0, presence_penalty=0.5)
    alone = run(BatchEngine(model, 1, 128), [job(model, PROMPTS[0], params=params, seed=7)])[0]
    crowd = run(BatchEngine(model, 4, 128), [job(model, p, params=params, seed=7 + i) for i, p in enumerate(PROMPTS)])
    assert crowd[0].tokens == alone.tokens


def test_a_slot_reuses_the_prefix_it_holds(model):
    engine = BatchEngine(model, 2, 128)
    first = run(engine, [job(model, "The history of the city begins in the third century")])[0]
    follow = run(engine, [job(model, "The history of the city begins in the third century, when")])[0]
    n_first = len(first.prompt)
    assert follow.n_cached == n_first   # the whole first prompt, not evaluated again
    fresh = run(BatchEngine(model, 1, 128), [job(model, "The history of the city begins in the third century, when")])
    assert follow.tokens == fresh[0].tokens
    again = run(engine, [job(model, "The history of the city begins in the third century")])[0]
    assert again.n_cached == n_first - 1 and again.tokens == first.tokens   # all cached: the last one re-run


def test_finish_reasons(model):
    engine = BatchEngine(model, 2, 40)
    length = run(engine, [job(model, "Count: 1, 2, 3,", max_tokens=4)])[0]
    assert length.finish_reason == "length" and len(length.tokens) == 4
    full = job(model, "Count: 1, 2, 3,", max_tokens=None)
    full.stop_ids = frozenset()   # nothing but the context ends it
    run(engine, [full])
    assert full.finish_reason == "length" and len(full.prompt) + len(full.tokens) == 40 + 1   # last one not fed
    said = text_of(length)
    cut = said[2:4]   # a stop string across token boundaries, maybe
    stopped = run(engine, [job(model, "Count: 1, 2, 3,", stop_strings=[cut])])[0]
    assert stopped.finish_reason == "stop" and text_of(stopped) == said[:said.index(cut)]
    eog = next(iter(model.tokenizer.eog_ids))
    chat = model.tokenizer.encode("<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\n", parse_special=True)
    j = job(model, "", max_tokens=64)
    j.prompt = chat
    run(BatchEngine(model, 1, 128), [j])
    assert j.finish_reason == "stop" and eog not in j.tokens and len(j.tokens) < 64
    zero = run(engine, [job(model, "Hello", max_tokens=0)])[0]
    assert zero.finish_reason == "length" and zero.tokens == []


def test_cancelled_jobs_free_their_slot_at_the_next_step(model):
    engine = BatchEngine(model, 1, 128)
    a, b = job(model, PROMPTS[0], max_tokens=50), job(model, PROMPTS[1], max_tokens=3)
    engine.submit([a, b])
    for _ in range(3):
        engine.step()
    assert engine.busy_slots == 1 and engine.queued == 1
    a.cancel()
    engine.step()   # b takes the slot
    assert a.finish_reason is None and len(a.tokens) < 50
    engine.run_until_idle()
    assert b.finish_reason == "length" and len(b.tokens) == 3


def test_queue_is_bounded_and_prompts_checked(model):
    engine = BatchEngine(model, 1, 16, max_queue=2)
    engine.submit([job(model, "a"), job(model, "b")])   # one takes the free slot at the next step
    engine.submit([job(model, "c")])
    with pytest.raises(QueueFull):
        engine.submit([job(model, "d")])
    with pytest.raises(TooManyJobs, match="at most 3"):  # more than slots and queue could ever hold
        BatchEngine(model, 1, 16, max_queue=2).submit([job(model, w) for w in "efgh"])
    with pytest.raises(PromptTooLong):
        BatchEngine(model, 1, 4).submit([job(model, "one two three four five six")])
    with pytest.raises(ValueError, match="vocabulary"):
        BatchEngine(model, 1, 16).submit([Job([model.n_vocab])])


def test_logprobs_and_prompt_logprobs(model):
    engine = BatchEngine(model, 1, 64)
    j = run(engine, [job(model, "The capital of France is", max_tokens=3, logprobs=2, prompt_logprobs=True)])[0]
    lps = [e.logprob for e in j.events if e.logprob is not None]
    assert [lp.token for lp in lps] == j.tokens and all(lp.top[0][0] == lp.token for lp in lps)   # greedy
    prompt = next(e.prompt_logprobs for e in j.events if e.prompt_logprobs is not None)
    assert [p.token for p in prompt] == j.prompt and prompt[0].logprob is None
    assert all(p.logprob < 0 and len(p.top) == 2 for p in prompt[1:])
    # the same as the logits of a plain forward pass give
    sl = np.arange(len(j.prompt), dtype=np.int32)
    logits = model.decoder.forward(model.new_cache(64), np.array(j.prompt, np.int32), sl, sl, len(sl),
                                   len(sl)).astype(np.float64)
    want = logits[0, j.prompt[1]] - logits[0].max() - np.log(np.exp(logits[0] - logits[0].max()).sum())
    assert prompt[1].logprob == pytest.approx(want, abs=1e-3)


def test_the_thread_serves_jobs_and_stops(model):
    engine = BatchEngine(model, 2, 64)
    done = threading.Event()
    j = job(model, PROMPTS[0], max_tokens=4)
    j.on_event = lambda e: done.set() if e.finish_reason else None
    engine.start()
    try:
        engine.submit([j])
        assert done.wait(30)
    finally:
        engine.stop()
    late = job(model, PROMPTS[1])
    engine.submit([late])
    engine.stop()   # a job still queued at stop hears why
    assert late.events and late.events[-1].error


def test_a_job_that_cannot_start_fails_alone(model, monkeypatch):
    """A job whose sampler cannot be built ends with an error event; the engine thread goes on and
    serves the next job (before, the exception ended the thread and every later request hung)."""
    import gpt4all_core.engine.batch as batch
    real = batch.Sampler

    def picky(params, seed):
        if seed == 13:
            raise OverflowError("seed 13 is unlucky")
        return real(params, seed)

    monkeypatch.setattr(batch, "Sampler", picky)
    engine = BatchEngine(model, n_slots=1, n_ctx=64)
    engine.start()
    try:
        bad = job(model, PROMPTS[0], seed=13, max_tokens=2)
        good = job(model, PROMPTS[1], seed=1, max_tokens=2)
        done = threading.Event()
        good.on_event = lambda e: (good.events.append(e), e.finish_reason and done.set())
        engine.submit([bad, good])
        assert done.wait(60) and len(good.tokens) == 2 and good.events[-1].finish_reason == "length"
        assert [e.error for e in bad.events] == ["the job could not start: seed 13 is unlucky"] and bad.tokens == []
    finally:
        engine.stop()
