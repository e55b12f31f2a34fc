"""A real `gpt4all-core serve` process on 127.0.0.1 for the server tests and the benchmark."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

MODEL_ID = "SmolLM2-135M-Instruct.Q4_1.gguf"
KEYS = {"keys": [
    {"key": "sk-test-unlimited-0001", "name": "unlimited"},
    {"key": "sk-test-twoperminute-02", "name": "slow", "requests_per_minute": 2},
    {"key": "sk-test-budget-00000003", "name": "budget", "token_budget": 1},
]}
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`gpt4all-core serve MODEL ARGS` on 127.0.0.1:port until stop()."""

    def __init__(self, model: Path, *args: str, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "gpt4all_core.cli", "serve", str(model), "--port",
                                      str(self.port), "--log-level", "warning", *args],
                                     stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}): {log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not come up: {log.read_text()[-2000:]}")

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
