"""Concurrent streaming chat clients, run as their own process by the load test:

    python load_clients.py URL REQUESTS.json --clients 32 --rounds 2 [--seconds 60]

Each client sends the requests of REQUESTS.json (a list of chat request bodies) in turn, starting
at its own offset, streaming each; --rounds passes over the list, or until --seconds have gone by.
Every stream is checked as it arrives (each data line JSON of one completion id, the role first,
exactly one finish_reason, `data: [DONE]` last); the results go to stdout as JSON:
[{"request": i, "text": ..., "finish_reason": ..., "problems": [...]}, ...].
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import httpx


async def one(http: httpx.AsyncClient, url: str, body: dict, index: int) -> dict:
    problems, text, finish, ids, role_seen, done = [], [], [], set(), False, False
    async with http.stream("POST", url + "/v1/chat/completions", json={**body, "stream": True}) as r:
        if r.status_code != 200:
            return {"request": index, "text": "", "finish_reason": None,
                    "problems": [f"status {r.status_code}: {(await r.aread())[:200]!r}"]}
        async for line in r.aiter_lines():
            if not line.strip() or line.startswith(":"):
                continue
            if not line.startswith("data: "):
                problems.append(f"not a data line: {line[:80]!r}")
                continue
            data = line[len("data: "):]
            if done:
                problems.append("data after [DONE]")
            if data == "[DONE]":
                done = True
                continue
            try:
                chunk = json.loads(data)
            except json.JSONDecodeError:
                problems.append(f"not JSON: {data[:80]!r}")
                continue
            if "error" in chunk:
                problems.append(f"error: {chunk['error']}")
                continue
            ids.add(chunk.get("id"))
            for c in chunk.get("choices", []):
                delta = c.get("delta", {})
                if delta.get("role") == "assistant":
                    role_seen = True
                elif not role_seen:
                    problems.append("content before the role")
                text.append(delta.get("content") or "")
                if c.get("finish_reason"):
                    finish.append(c["finish_reason"])
    if not done:
        problems.append("no [DONE]")
    if len(ids) != 1:
        problems.append(f"{len(ids)} completion ids in one stream")
    if len(finish) != 1:
        problems.append(f"{len(finish)} finish reasons")
    return {"request": index, "text": "".join(text), "finish_reason": finish[0] if finish else None,
            "problems": problems}


async def client(http, url, bodies, offset, rounds, deadline, out):
    for k in range(rounds * len(bodies)):
        if time.monotonic() > deadline:
            return
        i = (offset + k) % len(bodies)
        try:
            out.append(await one(http, url, bodies[i], i))
        except httpx.HTTPError as e:
            out.append({"request": i, "text": "", "finish_reason": None, "problems": [f"{type(e).__name__}: {e}"]})


async def main(url: str, bodies: list[dict], clients: int, rounds: int, seconds: float) -> list[dict]:
    out: list[dict] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=httpx.Timeout(300), limits=limits) as http:
        await asyncio.gather(*(client(http, url, bodies, c, rounds, deadline, out) for c in range(clients)))
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("requests")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--seconds", type=float, default=300)
    a = p.parse_args()
    with open(a.requests) as f:
        bodies = json.load(f)
    json.dump(asyncio.run(main(a.url, bodies, a.clients, a.rounds, a.seconds)), sys.stdout)
