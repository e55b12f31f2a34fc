"""The gpt4all package (2.8.2, the API we are a drop-in for; test-only) as Embed4All's oracle. It runs
in a child process: its llama.cpp and llama-cpp-python's should not share one process."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, warnings
from gpt4all import Embed4All
req = json.load(sys.stdin)
model = Embed4All(req["name"], model_path=req["folder"], allow_download=False, device="cpu", n_threads=2,
                  n_ctx=req["n_ctx"])
results = []
for call in req["calls"]:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = model.embed(return_dict=True, **call)
        results.append({"result": got, "warnings": [str(w.message) for w in caught]})
    except Exception as e:
        results.append({"error": type(e).__name__, "message": str(e)})
print("\n" + json.dumps(results))
"""


def gpt4all_embed(path: Path, calls: list[dict], n_ctx: int = 2048) -> list[dict]:
    """gpt4all.Embed4All(path).embed(return_dict=True, **call) for each call: {"result": {embeddings,
    n_prompt_tokens}, "warnings": [...]} or {"error": exception type name, "message": ...}."""
    request = {"name": Path(path).name, "folder": str(Path(path).parent), "n_ctx": n_ctx, "calls": calls}
    proc = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(request), capture_output=True, text=True,
                          timeout=600, cwd=Path(path).parent)
    if proc.returncode:
        raise AssertionError(f"the gpt4all oracle failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
