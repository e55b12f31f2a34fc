"""Chat and text completions: an OpenAI request in, engine jobs (one per choice) out, and their
events back into OpenAI's response objects, whole or as server-sent events.

Defaults are OpenAI's, not GPT4All's: temperature 1, top_p 1, no top-k, no repeat penalty, and
max_tokens until a stop or the end of the slot's context (GPT4All's server stops at 16). The
penalties look at the reply only, as GPT4All's current backend does.
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse

from gpt4all_core import __version__
from gpt4all_core.chat import ChatTemplate, ChatTemplateError
from gpt4all_core.engine.batch import BatchEngine, Event, Job, PromptTooLong, QueueFull, TokenLogprob, TooManyJobs
from gpt4all_core.engine.sampling import SamplingParams
from gpt4all_core.models.base import Model
from gpt4all_core.server.auth import ApiKey, Gate
from gpt4all_core.server.compute import in_own_thread
from gpt4all_core.server.errors import APIError, bad_request, model_not_found, sse_error
from gpt4all_core.server.schemas import MAX_STOP, ChatCompletionRequest, CompletionRequest, check_unsupported

FINGERPRINT = f"fp_gpt4all_core_{__version__}"
DISCONNECT_POLL_S = 0.25  # how often a non-streaming request checks that its client is still there


def _special_token_texts(model: Model) -> dict[str, str]:
    vocab = model.tokenizer.vocab
    names = {"bos": "bos_token", "eos": "eos_token", "unknown": "unk_token", "padding": "pad_token",
             "separator": "sep_token", "cls": "cls_token", "mask": "mask_token"}
    return {var: vocab.tokens[vocab.special[k]] for k, var in names.items() if k in vocab.special}


class Generator:
    """The served model: its id, prompts (chat template, tokenizer) and the engine that runs them."""

    def __init__(self, model: Model, model_id: str, engine: BatchEngine, chat_template: str | None = None,
                 max_tokens: int | None = None, localdocs: list[str] | None = None, localdocs_db=None):
        self.model, self.model_id, self.engine, self.max_tokens = model, model_id, engine, max_tokens
        self.localdocs, self.localdocs_db = list(localdocs or []), localdocs_db
        source = chat_template if chat_template is not None else model.chat_template
        self.template = ChatTemplate(source, _special_token_texts(model)) if source else None
        tok = model.tokenizer
        self.stop_ids = tok.eog_ids
        # end-of-turn markers typed out as text (several tokens) end a reply too, as in the Python API
        self.stop_texts = sorted({tok.vocab.tokens[i] for i in self.stop_ids} - {""})

    # ---- prompts ----

    def collections(self, req: ChatCompletionRequest) -> list[str]:
        """The LocalDocs collections a request reads: its own, else the server's."""
        return list(req.localdocs if req.localdocs is not None else self.localdocs)

    def references(self, req: ChatCompletionRequest) -> list | None:
        """The LocalDocs snippets for the last user message (the request's collections, else the
        server's): None when no collection applies, as GPT4All's server answers without LocalDocs."""
        collections = self.collections(req)
        if not collections:
            return None
        from gpt4all_core import localdocs
        from gpt4all_core.errors import GPT4AllCoreError
        query = next((m.text() for m in reversed(req.messages) if m.role == "user"), "")
        try:
            db = self.localdocs_db if isinstance(self.localdocs_db, localdocs.LocalDocs) else \
                localdocs.shared(self.localdocs_db)
            return db.search(collections, query, localdocs.DEFAULT_K) if query.strip() else []
        except (GPT4AllCoreError, KeyError, ValueError) as e:
            raise bad_request(f"localdocs: {e}", param="localdocs") from None

    def chat_tokens(self, req: ChatCompletionRequest, refs: list | None = None) -> list[int]:
        if self.template is None:
            raise bad_request(f"the model {self.model_id} has no chat template: use /v1/completions, or start the "
                              "server with --chat-template", param="messages", code="no_chat_template")
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                    for m in req.messages]
        if refs:  # GPT4All's "### Context:" block before the last user message
            from gpt4all_core.localdocs import format_context
            last = max(i for i, m in enumerate(messages) if m["role"] == "user")
            messages[last]["content"] = format_context(refs) + messages[last]["content"]
        try:
            text = self.template.render(messages, add_generation_prompt=True)
        except (ChatTemplateError, ValueError) as e:
            raise bad_request(str(e), param="messages") from None
        bos = self.template.special_tokens.get("bos_token") or "\0"
        return self.model.tokenizer.encode(text, add_special=not text.startswith(bos), parse_special=True)

    def text_prompts(self, prompt) -> list[tuple[list[int], str]]:
        """(tokens, text) per prompt: a string, strings, token ids, or lists of token ids."""
        tok = self.model.tokenizer
        if isinstance(prompt, str):
            prompt = [prompt]
        elif prompt and isinstance(prompt[0], int):
            prompt = [prompt]
        if not prompt:
            raise bad_request("prompt must not be empty", param="prompt")
        out = []
        for i, p in enumerate(prompt):
            if isinstance(p, str):
                out.append((tok.encode(p, add_special=True, parse_special=False), p))
                continue
            bad = [t for t in p if not 0 <= t < self.model.n_vocab]
            if bad or not p:
                raise bad_request(f"prompt[{i}]: " + (f"token id {bad[0]} is outside the vocabulary of "
                                                     f"{self.model.n_vocab}" if bad else "no tokens"), param="prompt")
            out.append((list(p), tok.decode(p)))
        return out

    # ---- requests into jobs ----

    def check(self, req) -> None:
        check_unsupported(req)
        if req.model != self.model_id:
            raise model_not_found(req.model)
        if req.stream_options is not None and not req.stream:
            raise bad_request("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                              param="stream_options")
        stops = req.stop_list()
        if len(stops) > MAX_STOP or any(not s for s in stops):
            raise bad_request(f"'stop' takes at most {MAX_STOP} non-empty strings", param="stop")

    def params(self, req) -> SamplingParams:
        def pick(value, default):
            return default if value is None else value
        return SamplingParams(temp=pick(req.temperature, 1.0), top_k=pick(req.top_k, 0), top_p=pick(req.top_p, 1.0),
                              min_p=pick(req.min_p, 0.0), repeat_penalty=pick(req.repeat_penalty, 1.0),
                              repeat_last_n=pick(req.repeat_last_n, 64),
                              presence_penalty=pick(req.presence_penalty, 0.0),
                              frequency_penalty=pick(req.frequency_penalty, 0.0))

    def jobs(self, req, prompts: list[list[int]], logprobs: int | None, echo_logprobs: bool) -> list[Job]:
        n_ctx = self.engine.n_ctx
        for p in prompts:
            if len(p) > n_ctx:
                raise bad_request(f"This model's maximum context length is {n_ctx} tokens. However, your "
                                  f"prompt is {len(p)} tokens.", param="messages" if hasattr(req, "messages")
                                  else "prompt", code="context_length_exceeded")
        limit = getattr(req, "max_completion_tokens", None)
        limit = req.max_tokens if limit is None else limit
        if self.max_tokens is not None:
            limit = self.max_tokens if limit is None else min(limit, self.max_tokens)
        params, stops, n = self.params(req), tuple(self.stop_texts) + tuple(req.stop_list()), req.n or 1
        return [Job(list(p), params, seed=None if req.seed is None else req.seed + i, max_tokens=limit,
                    stop_ids=self.stop_ids, stop_strings=stops, logprobs=logprobs, prompt_logprobs=echo_logprobs)
                for p in prompts for i in range(n)]

    def token_text(self, token: int) -> tuple[str, list[int]]:
        piece = self.model.tokenizer.token_to_piece(token)
        return piece.decode("utf-8", "replace"), list(piece)


# ---- running jobs and gathering their events ----

@dataclass
class _Choice:
    job: Job
    text: list[str] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    prompt_logprobs: tuple | None = None
    finish_reason: str | None = None
    done: bool = False


class Run:
    """The jobs of one request on the engine, their events arriving on this event loop."""

    def __init__(self, gen: Generator, jobs: list[Job], key: ApiKey, gate: Gate, n_prompt_tokens: int):
        self.gen, self.key, self.gate, self.n_prompt_tokens = gen, key, gate, n_prompt_tokens
        self.choices = [_Choice(j) for j in jobs]
        self.queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        for i, job in enumerate(jobs):
            job.on_event = self._sink(loop, i)
        self.id_created = int(time.time())
        self._recorded = False

    def _sink(self, loop, index):
        def put(event: Event) -> None:  # on the engine thread
            try:
                loop.call_soon_threadsafe(self.queue.put_nowait, (index, event))
            except RuntimeError:  # the loop is closed: the server is going away
                pass
        return put

    def submit(self) -> None:
        try:
            self.gen.engine.submit([c.job for c in self.choices])
        except QueueFull as e:
            raise APIError(503, f"The server is busy ({e}); try again shortly.", type="server_error",
                           code="queue_full", headers={"Retry-After": "1"}) from None
        except PromptTooLong as e:
            raise bad_request(str(e), code="context_length_exceeded") from None
        except TooManyJobs as e:  # n times the prompts: a retry would be refused the same way
            raise bad_request(f"This request asks for {e.n_jobs} completions (n times the prompts); the server "
                              f"takes at most {e.most} at once (--parallel plus --max-queue).", param="n",
                              code="too_many_completions") from None

    def cancel(self) -> None:
        for c in self.choices:
            c.job.cancel()
        self.record()

    def record(self) -> None:
        if not self._recorded:
            self._recorded = True
            self.gate.record(self.key, self.n_prompt_tokens, self.completion_tokens)

    @property
    def completion_tokens(self) -> int:
        return sum(len(c.job.tokens) for c in self.choices)

    def usage(self) -> dict:
        return {"prompt_tokens": self.n_prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.n_prompt_tokens + self.completion_tokens}

    def _apply(self, index: int, ev: Event) -> None:
        c = self.choices[index]
        if ev.error is not None:
            raise APIError(500, ev.error, type="server_error")
        if ev.prompt_logprobs is not None:
            c.prompt_logprobs = ev.prompt_logprobs
        if ev.text:
            c.text.append(ev.text)
        if ev.logprob is not None:
            c.logprobs.append(ev.logprob)
        if ev.finish_reason is not None:
            c.finish_reason, c.done = ev.finish_reason, True

    @property
    def done(self) -> bool:
        return all(c.done for c in self.choices)

    async def events(self) -> AsyncIterator[tuple[int, Event]]:
        """Events until every choice is done; raises APIError for an engine failure."""
        while not self.done:
            index, ev = await self.queue.get()
            self._apply(index, ev)
            yield index, ev

    async def wait(self, request: Request) -> None:
        """All events, for a response sent whole; a client gone meanwhile cancels the jobs."""
        loop = asyncio.get_running_loop()
        checked = loop.time()
        try:
            while not self.done:
                try:  # cancelling a queue.get() on timeout loses no event
                    index, ev = await asyncio.wait_for(self.queue.get(), DISCONNECT_POLL_S)
                    self._apply(index, ev)
                except asyncio.TimeoutError:
                    pass
                if loop.time() - checked >= DISCONNECT_POLL_S:  # events may keep coming: check by the clock
                    checked = loop.time()
                    if await request.is_disconnected():
                        self.cancel()
                        return
        finally:
            self.record()


# ---- OpenAI's objects ----

def _chat_logprobs(gen: Generator, lps: list[TokenLogprob]) -> dict:
    def entry(token: int, logprob: float) -> dict:
        text, raw = gen.token_text(token)
        return {"token": text, "logprob": logprob, "bytes": raw}
    return {"content": [{**entry(lp.token, lp.logprob), "top_logprobs": [entry(t, v) for t, v in lp.top]}
                        for lp in lps], "refusal": None}


def _text_logprobs(gen: Generator, lps: list[TokenLogprob], offset: int = 0) -> dict:
    tokens, values, tops, offsets = [], [], [], []
    for lp in lps:
        text = gen.token_text(lp.token)[0]
        tokens.append(text)
        offsets.append(offset)
        offset += len(text)
        values.append(lp.logprob)
        tops.append(None if lp.logprob is None else {gen.token_text(t)[0]: v for t, v in lp.top})
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}


def _echo_logprobs(choice: _Choice) -> list:
    """Prompt logprobs for echo (the first prompt token's logprob is None: nothing comes before it)."""
    return list(choice.prompt_logprobs or ())


async def chat_completion(gen: Generator, req: ChatCompletionRequest, key: ApiKey, gate: Gate, request: Request):
    gen.check(req)
    if req.top_logprobs is not None and not req.logprobs:
        raise bad_request("'top_logprobs' needs 'logprobs' set to true", param="top_logprobs")
    # the query's embedding on a thread of its own (compute.py says why); none without collections
    refs = await in_own_thread(gen.references, req) if gen.collections(req) else None
    gate.admit(key)
    prompt = gen.chat_tokens(req, refs)
    logprobs = (req.top_logprobs or 0) if req.logprobs else None
    run = Run(gen, gen.jobs(req, [prompt], logprobs, False), key, gate, len(prompt))
    run.submit()
    rid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    head = {"id": rid, "created": run.id_created, "model": gen.model_id, "system_fingerprint": FINGERPRINT}
    if req.stream:
        return _stream(run, request, _chat_chunks(gen, run, head, req))
    await run.wait(request)
    choices = [{"index": i, "message": {"role": "assistant", "content": "".join(c.text), "refusal": None},
                "logprobs": _chat_logprobs(gen, c.logprobs) if logprobs is not None else None,
                "finish_reason": c.finish_reason,
                "references": None if refs is None else [r.to_dict() for r in refs]}
               for i, c in enumerate(run.choices)]
    return JSONResponse({**head, "object": "chat.completion", "choices": choices, "usage": run.usage()})


async def _chat_chunks(gen: Generator, run: Run, head: dict, req) -> AsyncIterator[dict]:
    usage = bool(req.stream_options and req.stream_options.include_usage)
    extra = {"usage": None} if usage else {}

    def chunk(index: int, delta: dict, finish=None, logprobs=None) -> dict:
        return {**head, "object": "chat.completion.chunk", **extra,
                "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]}

    for i in range(len(run.choices)):
        yield chunk(i, {"role": "assistant", "content": "", "refusal": None})
    async for i, ev in run.events():
        if ev.token is not None:
            lp = _chat_logprobs(gen, [ev.logprob]) if ev.logprob is not None else None
            if ev.text or lp:
                yield chunk(i, {"content": ev.text}, logprobs=lp)
        elif ev.finish_reason is not None:
            if ev.text:
                yield chunk(i, {"content": ev.text})
            yield chunk(i, {}, finish=ev.finish_reason)
    if usage:
        yield {**head, "object": "chat.completion.chunk", "choices": [], "usage": run.usage()}


async def completion(gen: Generator, req: CompletionRequest, key: ApiKey, gate: Gate, request: Request):
    gen.check(req)
    gate.admit(key)
    prompts = gen.text_prompts(req.prompt)
    logprobs = req.logprobs
    echo_lp = bool(req.echo) and logprobs is not None
    run = Run(gen, gen.jobs(req, [p for p, _ in prompts], logprobs, echo_lp), key, gate,
              sum(len(p) for p, _ in prompts))
    run.submit()
    n = req.n or 1
    echo = [prompts[i // n][1] if req.echo else "" for i in range(len(run.choices))]
    head = {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "created": run.id_created, "model": gen.model_id,
            "system_fingerprint": FINGERPRINT}
    if req.stream:
        return _stream(run, request, _text_chunks(gen, run, head, req, echo))
    await run.wait(request)
    choices = []
    for i, c in enumerate(run.choices):
        lp = None
        if logprobs is not None:
            own = _echo_logprobs(c) if echo_lp else []
            lp = _text_logprobs(gen, own + c.logprobs)
        choices.append({"index": i, "text": echo[i] + "".join(c.text), "logprobs": lp, "finish_reason": c.finish_reason})
    return JSONResponse({**head, "object": "text_completion", "choices": choices, "usage": run.usage()})


async def _text_chunks(gen: Generator, run: Run, head: dict, req, echo: list[str]) -> AsyncIterator[dict]:
    usage = bool(req.stream_options and req.stream_options.include_usage)
    extra = {"usage": None} if usage else {}

    def chunk(index: int, text: str, finish=None, logprobs=None) -> dict:
        return {**head, "object": "text_completion", **extra,
                "choices": [{"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}]}

    sent_echo = [False] * len(run.choices)
    async for i, ev in run.events():
        if ev.prompt_logprobs is not None:
            sent_echo[i] = True
            yield chunk(i, echo[i], logprobs=_text_logprobs(gen, _echo_logprobs(run.choices[i])))
            continue
        if echo[i] and not sent_echo[i]:
            sent_echo[i] = True
            yield chunk(i, echo[i])
        if ev.token is not None:
            lp = _text_logprobs(gen, [ev.logprob]) if ev.logprob is not None else None
            if ev.text or lp:
                yield chunk(i, ev.text, logprobs=lp)
        elif ev.finish_reason is not None:
            yield chunk(i, ev.text, finish=ev.finish_reason)
    if usage:
        yield {**head, "object": "text_completion", "choices": [], "usage": run.usage()}


def _stream(run: Run, request: Request, chunks: AsyncIterator[dict]) -> EventSourceResponse:
    """Server-sent events, `data: [DONE]` last. A client that goes away ends the generator (sse-starlette
    cancels it), and with it the jobs, so its slot is free for the next step."""
    async def events():
        try:
            async for c in chunks:
                yield {"data": json.dumps(c, ensure_ascii=False)}
            yield {"data": "[DONE]"}
        except APIError as e:
            yield {"data": sse_error(e)}
        finally:
            run.cancel()  # no-op for finished jobs; records the usage
    return EventSourceResponse(events(), sep="\n", ping=15)
