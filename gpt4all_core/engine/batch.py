"""Continuous batching: several generation requests decoding together, one forward pass per step.

The KV cache is split into n_slots regions of n_ctx slots each. Slot i's sequence lives in
[i * n_ctx, (i + 1) * n_ctx) at positions 0, 1, ... and its tokens attend only there (the
decoder's kv_ranges), so sequences share every forward pass without seeing each other.

Each step: queued jobs take free slots (the one whose cached tokens share the longest prefix with
the prompt, so a chat's next turn, which repeats the whole history, evaluates only what is new),
then one forward pass carries the next token of every decoding slot plus as much of the waiting
prompts as the batch budget leaves, and each slot samples from its own row of logits. A job that
finishes or is cancelled frees its slot at the next step; a queued job joins at the next step.

A request gets the same numbers, and so the same greedy tokens, whoever shares its batches, as it
would running alone: every matrix product is batch-invariant (a row's result depends on that row
only), and attention reads only the request's own slots.

One thread (start()) runs the steps; submit() and Job.cancel() may be called from any thread.
Events reach the job's on_event callback on the engine thread: keep it short (the server only
hands them to its event loop).
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gpt4all_core.engine.generate import TextStream
from gpt4all_core.engine.sampling import Sampler, SamplingParams
from gpt4all_core.errors import GPT4AllCoreError
from gpt4all_core.models.base import Model

MIN_PREFILL = 16  # prompt tokens a step always takes, however many slots are decoding


class QueueFull(GPT4AllCoreError):
    """Every slot is busy and the queue holds max_queue jobs already."""


class TooManyJobs(GPT4AllCoreError, ValueError):
    """More jobs at once than the slots and the queue together can ever hold: waiting would not help."""

    def __init__(self, n_jobs: int, most: int):
        super().__init__(f"{n_jobs} completions at once; this engine takes at most {most} (its slots and its queue)")
        self.n_jobs, self.most = n_jobs, most


class PromptTooLong(GPT4AllCoreError, ValueError):
    """A prompt that does not fit a slot's context."""

    def __init__(self, n_tokens: int, n_ctx: int):
        super().__init__(f"the prompt is {n_tokens} tokens; a slot's context holds {n_ctx}")
        self.n_tokens, self.n_ctx = n_tokens, n_ctx


@dataclass(frozen=True)
class TokenLogprob:
    token: int
    logprob: float | None  # None: the first prompt token's (echo)
    top: tuple[tuple[int, float], ...] = ()  # the most likely tokens at this step, best first


@dataclass(frozen=True)
class Event:
    """What a job hears: a generated token (token, its text: whole characters only, possibly
    empty while a stop string may be starting), the prompt's logprobs (prompt_logprobs, once), or
    the end (finish_reason 'stop' or 'length', with the last held-back text; or error)."""
    text: str = ""
    token: int | None = None
    logprob: TokenLogprob | None = None
    prompt_logprobs: tuple[TokenLogprob, ...] | None = None
    finish_reason: str | None = None
    error: str | None = None


def _ignore(event: Event) -> None:
    pass


@dataclass(eq=False)
class Job:
    """One completion: prompt token ids in, events out.

    max_tokens None: until a stop or the slot's context is full. logprobs None: none; k >= 0: each
    token's logprob and the k most likely. prompt_logprobs: the prompt tokens' logprobs too (the
    first has none), with top `logprobs or 0`; such a prompt is evaluated whole (its logits are
    needed), not reused from the cache."""
    prompt: list[int]
    params: SamplingParams = field(default_factory=SamplingParams)
    seed: int | None = None
    max_tokens: int | None = None
    stop_ids: frozenset[int] = frozenset()
    stop_strings: Sequence[str] = ()
    logprobs: int | None = None
    prompt_logprobs: bool = False
    on_event: Callable[[Event], None] = _ignore
    # filled in by the engine
    tokens: list[int] = field(default_factory=list)  # generated so far
    n_cached: int = 0  # prompt tokens found in the slot's cache, not evaluated again
    finish_reason: str | None = None
    submitted: float = field(default_factory=time.monotonic)
    _cancelled: bool = False

    def cancel(self) -> None:
        """Stop as soon as possible (the client went away); no more events come."""
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled


@dataclass(eq=False)
class _Slot:
    index: int
    base: int
    tokens: list[int] = field(default_factory=list)  # what its cache region holds, position by position
    job: Job | None = None
    todo: list[int] = field(default_factory=list)  # prompt tokens still to evaluate
    next_token: int | None = None  # sampled, fed in the next step
    sampler: Sampler | None = None
    stream: TextStream | None = None
    prompt_lp: list = field(default_factory=list)
    last_used: int = 0


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class BatchEngine:
    """n_slots sequences of up to n_ctx tokens each over one model, stepped together.

    n_batch: tokens per forward pass (decoding slots first, one each; prompts fill the rest, at
    least MIN_PREFILL). max_queue: jobs that may wait for a slot before submit() raises QueueFull.
    """

    def __init__(self, model: Model, n_slots: int = 1, n_ctx: int = 2048, n_batch: int = 128,
                 n_threads: int | None = None, max_queue: int = 64):
        for name, value, low in (("n_slots", n_slots, 1), ("n_ctx", n_ctx, 2), ("n_batch", n_batch, 1),
                                 ("max_queue", max_queue, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer of at least {low}, not {value!r}")
        self.model = model
        self.n_slots, self.n_ctx, self.n_batch, self.n_threads = n_slots, n_ctx, n_batch, n_threads
        self.max_queue = max_queue
        self.cache = model.new_cache(n_slots * n_ctx)
        self._slots = [_Slot(i, i * n_ctx) for i in range(n_slots)]
        self._queue: deque[Job] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._clock = itertools.count(1)
        self.stats = {"steps": 0, "generated_tokens": 0, "prompt_tokens_evaluated": 0, "prompt_tokens_reused": 0}

    # ---- the outside ----

    def submit(self, jobs: Sequence[Job]) -> None:
        """Queues the jobs, all or none: PromptTooLong for an empty or too long prompt, QueueFull when
        they would not fit the queue now, TooManyJobs when they never would."""
        for job in jobs:
            if not job.prompt or len(job.prompt) > self.n_ctx:
                raise PromptTooLong(len(job.prompt), self.n_ctx)
            bad = [t for t in job.prompt if not 0 <= t < self.model.n_vocab]
            if bad:
                raise ValueError(f"prompt: token id {bad[0]} outside the vocabulary of {self.model.n_vocab}")
        if len(jobs) > self.n_slots + self.max_queue:
            raise TooManyJobs(len(jobs), self.n_slots + self.max_queue)
        with self._cond:
            free = sum(s.job is None for s in self._slots)
            if len(self._queue) + len(jobs) - free > self.max_queue:  # those that will find no free slot
                raise QueueFull(f"{len(self._queue)} requests are waiting for {self.n_slots} slots")
            self._queue.extend(jobs)
            self._cond.notify()

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def busy_slots(self) -> int:
        return sum(s.job is not None for s in self._slots)

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._loop, name="gpt4all-core-batch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Ends the thread; jobs still queued or running get an error event."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for slot in self._slots:
            if slot.job is not None:
                self._finish(slot, error="the server is shutting down")
        while self._queue:
            self._queue.popleft().on_event(Event(error="the server is shutting down"))

    def run_until_idle(self) -> None:
        """Steps on the calling thread until no job is left (tests, scripts: no thread needed)."""
        while self.step():
            pass

    # ---- one step ----

    def step(self) -> bool:
        """Admits queued jobs, runs one forward pass, samples; False when there was nothing to do."""
        self._admit()
        prefill, decode = self._plan()
        if not prefill and not decode:
            return False
        try:
            self._run(prefill, decode)
        except Exception as e:  # a bug or out of memory: fail these jobs, keep serving the next ones
            for slot in {s for s, _ in prefill} | set(decode):
                self._forget(slot)
                self._finish(slot, error=f"generation failed: {type(e).__name__}: {e}")
        return True

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._queue and self.busy_slots == 0:
                    self._cond.wait()
                if self._stopping:
                    return
            self.step()

    def _admit(self) -> None:
        for slot in self._slots:
            if slot.job is not None and slot.job.cancelled:
                slot.job = None  # what it evaluated stays cached for a later prompt
        with self._cond:
            while self._queue:
                free = [s for s in self._slots if s.job is None]
                if not free:
                    return
                job = self._queue.popleft()
                if job.cancelled:
                    continue
                # the longest cached prefix; among equals the slot used longest ago, so recent prefixes stay
                slot = max(free, key=lambda s: (_common_prefix(s.tokens, job.prompt), -s.last_used))
                try:
                    self._assign(slot, job)
                except (ValueError, OverflowError, TypeError) as e:  # this job's settings: it fails, the engine goes on
                    self._finish(slot, error=f"the job could not start: {e}")

    def _assign(self, slot: _Slot, job: Job) -> None:
        common = 0 if job.prompt_logprobs else _common_prefix(slot.tokens, job.prompt)
        if common == len(job.prompt):
            common -= 1  # all cached, but the last token's logits are needed again
        self._truncate(slot, common)
        slot.job, slot.todo, slot.next_token = job, list(job.prompt[common:]), None
        slot.sampler = Sampler(job.params, job.seed)
        slot.stream = TextStream(self.model.tokenizer, job.stop_strings)
        # the first prompt token has no logprob: nothing comes before it
        slot.prompt_lp = [TokenLogprob(job.prompt[0], None)] if job.prompt_logprobs else []
        slot.last_used = next(self._clock)
        job.n_cached = common
        self.stats["prompt_tokens_reused"] += common

    def _truncate(self, slot: _Slot, n: int) -> None:
        if n < len(slot.tokens):
            self.cache.pos[slot.base + n:slot.base + len(slot.tokens)] = -1
            del slot.tokens[n:]

    def _forget(self, slot: _Slot) -> None:
        self._truncate(slot, 0)

    def _plan(self) -> tuple[list[tuple[_Slot, list[int]]], list[_Slot]]:
        """Which slots feed what: (slot, prompt chunk) pairs and the decoding slots."""
        active = [s for s in self._slots if s.job is not None]
        decode = [s for s in active if not s.todo and s.next_token is not None]
        budget = max(self.n_batch - len(decode), MIN_PREFILL)
        prefill = []
        for slot in sorted((s for s in active if s.todo), key=lambda s: s.last_used):
            if budget <= 0:
                break
            chunk = slot.todo[:budget]
            prefill.append((slot, chunk))
            budget -= len(chunk)
        return prefill, decode

    def _run(self, prefill: list[tuple[_Slot, list[int]]], decode: list[_Slot]) -> None:
        toks, pos, ranges, rows = [], [], [], []
        wanted: list[tuple[_Slot, str]] = []  # per logit row: whose, and what for ('prompt', 'first', 'next')
        for slot, chunk in prefill:
            start, n = len(slot.tokens), len(chunk)
            row0 = len(toks)
            toks += chunk
            pos += range(start, start + n)
            ranges += [(slot.base, slot.base + start + n)] * n
            done = n == len(slot.todo)
            if slot.job.prompt_logprobs:  # every row: each predicts the prompt's next token
                rows += range(row0, row0 + n)
                wanted += [(slot, "prompt")] * (n - 1) + [(slot, "first" if done else "prompt")]
            elif done:
                rows.append(row0 + n - 1)
                wanted.append((slot, "first"))
        n_prompt = len(toks)
        for slot in decode:
            start = len(slot.tokens)
            rows.append(len(toks))
            toks.append(slot.next_token)
            pos.append(start)
            ranges.append((slot.base, slot.base + start + 1))
            wanted.append((slot, "next"))
        positions = np.asarray(pos, np.int32)
        slots = positions + np.asarray([lo for lo, _ in ranges], np.int32)
        logits = self.model.decoder.forward(self.cache, np.asarray(toks, np.int32), positions, slots,
                                            self.cache.n_ctx, n_threads=self.n_threads,
                                            kv_ranges=np.asarray(ranges, np.int32),
                                            logit_rows=np.asarray(rows, np.int64))
        self.stats["steps"] += 1
        self.stats["prompt_tokens_evaluated"] += n_prompt
        for slot, chunk in prefill:
            slot.tokens += chunk
            del slot.todo[:len(chunk)]
        for slot in decode:
            slot.tokens.append(slot.next_token)
            slot.next_token = None
        for row, (slot, what) in zip(logits, wanted):
            if slot.job is None:
                continue
            try:
                if what != "next" and slot.job.prompt_logprobs:
                    self._prompt_logprob(slot, row, last=what == "first")
                if what != "prompt":
                    self._sample(slot, row)
            except Exception as e:  # bad logits (NaN): this job fails, the others go on
                self._finish(slot, error=f"sampling failed: {e}")

    def _prompt_logprob(self, slot: _Slot, row: np.ndarray, last: bool) -> None:
        """Row after prompt token k: the logprob of prompt token k + 1 (when the prompt goes on)."""
        job = slot.job
        k = len(slot.prompt_lp)  # index of the prompt token this row predicts
        if k < len(job.prompt):
            lp, ids, lps = slot.sampler.logprobs(row, (), job.prompt[k], job.logprobs or 0)
            slot.prompt_lp.append(TokenLogprob(job.prompt[k], lp, tuple(zip(ids.tolist(), lps.tolist()))))
        if last:
            job.on_event(Event(prompt_logprobs=tuple(slot.prompt_lp)))

    def _sample(self, slot: _Slot, row: np.ndarray) -> None:
        job = slot.job
        if job.max_tokens == 0:
            return self._finish(slot, "length")
        token = slot.sampler.sample(row, job.tokens)
        if token in job.stop_ids:
            return self._finish(slot, "stop")
        lp = None
        if job.logprobs is not None:
            value, ids, lps = slot.sampler.logprobs(row, job.tokens, token, job.logprobs)
            lp = TokenLogprob(token, value, tuple(zip(ids.tolist(), lps.tolist())))
        job.tokens.append(token)
        self.stats["generated_tokens"] += 1
        text = slot.stream.feed(token)
        job.on_event(Event(text=text, token=token, logprob=lp))
        if slot.stream.done:
            self._finish(slot, "stop")
        elif (job.max_tokens is not None and len(job.tokens) >= job.max_tokens) or len(slot.tokens) >= self.n_ctx:
            self._finish(slot, "length")
        else:
            slot.next_token = token

    def _finish(self, slot: _Slot, reason: str | None = None, error: str | None = None) -> None:
        job = slot.job
        slot.job, slot.next_token, slot.todo = None, None, []
        if job is None:
            return
        job.finish_reason = reason
        if error is not None:
            job.on_event(Event(error=error))
        else:
            job.on_event(Event(text=slot.stream.flush(), finish_reason=reason))
