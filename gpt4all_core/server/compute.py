"""Model work that the server's requests start themselves (embeddings, LocalDocs queries), each on a
thread of its own that ends with it.

The kernels' OpenMP keeps a team of worker threads for every thread that starts a parallel region,
until that thread exits. A thread-pool worker, or the event loop's thread, that embeds a text keeps
its team beside the engine thread's; libgomp then counts more threads than cores and spins only 100
rounds before sleeping (GCC's GOMP_SPINCOUNT), so every parallel region of every decode step waits
on a wake-up. Measured (2 cores, SmolLM2): one client at 260 tokens/s before a /v1/embeddings
request, 76 after it and still 81 twelve seconds later. A thread that ends takes its team with it.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Callable, TypeVar

T = TypeVar("T")


async def in_own_thread(fn: Callable[..., T], *args) -> T:
    """fn(*args) on a new thread, awaited; its exception is raised here."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()

    def settle(error: BaseException | None, value) -> None:
        if done.cancelled():  # the request went away: nothing waits for the result
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(value)

    def work() -> None:
        try:
            value = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
            loop.call_soon_threadsafe(settle, e, None)
        else:
            loop.call_soon_threadsafe(settle, None, value)

    threading.Thread(target=work, name="gpt4all-core-compute", daemon=True).start()
    return await done
