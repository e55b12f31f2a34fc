"""The `gpt4all-core` command."""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys

from gpt4all_core.errors import GPT4AllCoreError


def cmd_inspect(args: argparse.Namespace) -> None:
    """A local file, or any model reference: a URL or an hf: reference not on disk has only its
    header read, through Range requests."""
    from gpt4all_core import gguf, hub
    from gpt4all_core.gguf.summary import format_summary, metadata_json, summarize

    if hub.parse(args.file).kind == "path":  # a path: the file's own errors (cannot open, bad header)
        gf = gguf.open(args.file)
    else:
        gf = hub.open_headers(args.file, args.dir, all_parts=False)[0]
    with gf:
        summary = summarize(gf)
        if args.json:
            summary["metadata"] = metadata_json(gf, array_head=None if args.full_arrays else 8)
            summary["tensors"] = [
                {"name": t.name, "type": t.type.name, "shape": list(t.shape), "offset": t.offset, "nbytes": t.nbytes}
                for t in gf.tensors.values()
            ]
            json.dump(summary, sys.stdout, indent=2, ensure_ascii=False)
            print()
        else:
            print(format_summary(summary))


def _size(n: float) -> str:
    for scale, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"


def cmd_pull(args: argparse.Namespace) -> None:
    """Fetches each model into --dir: missing files, and files whose source changed; the rest stay."""
    from tqdm import tqdm

    from gpt4all_core import hub

    for uri in args.uri:
        bar = tqdm(desc=uri, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, disable=None, leave=False)

        def progress(done: int, total: int, bar=bar) -> None:
            bar.total = total or None
            bar.update(done - bar.n)

        ctl = hub.download_model(uri, args.dir, progress=progress, connections=args.connections)
        try:
            while True:
                try:
                    path = ctl.result(timeout=0.2)
                    break
                except concurrent.futures.TimeoutError:
                    continue
        except KeyboardInterrupt:
            ctl.cancel()  # the workers stop after their current chunk; what they wrote is recorded
            try:
                ctl.result()
            except Exception:
                pass
            bar.close()
            print(f"gpt4all-core pull: interrupted; the partial download is kept (.part) and "
                  f"`gpt4all-core pull {uri}` resumes it", file=sys.stderr)
            raise
        finally:
            bar.close()
        state = "downloaded" if ctl.fetched else "up to date"
        print(f"{uri}: {path} ({state})")


def cmd_list(args: argparse.Namespace) -> None:
    """GPT4All's catalog, with what is downloaded already, and the other models in --dir."""
    from gpt4all_core import hub
    from gpt4all_core.hub import catalog

    models, source = catalog.load_catalog()
    folder = hub.models_dir(args.dir)
    local = sorted(p.name for p in folder.glob("*.gguf")) if folder.is_dir() else []
    if args.json:
        json.dump({"source": source, "directory": str(folder), "catalog": models,
                   "local": local}, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return
    print(f"catalog: {source}")
    known = set()
    for m in models:
        known.add(m["filename"])
        size = catalog.expected_size(m)
        mark = "*" if m["filename"] in local else " "
        print(f"{mark} {m['filename']:<48} {m.get('name', ''):<28} {_size(size) if size else '?':>10}  "
              f"RAM {m.get('ramrequired', '?')} GB")
    others = [n for n in local if n not in known]
    if others:
        print(f"other models in {folder}:")
        for n in others:
            print(f"* {n}")
    print(f"(* = in {folder})")


def cmd_estimate(args: argparse.Namespace) -> None:
    """Memory for the model at --ctx: weights, KV cache, working memory; what fits."""
    from gpt4all_core import hub
    from gpt4all_core.hub.estimate import estimate

    files = hub.open_headers(args.model, args.dir)
    try:
        est = estimate(files, args.ctx, n_batch=args.batch)
    finally:
        for f in files:
            f.close()
    if args.json:
        json.dump(est.as_dict(), sys.stdout, indent=2)
        print()
        return
    hp = est.hparams
    rows = [("model", f"{args.model} ({hp.architecture}, {hp.n_block} blocks, trained context {hp.n_ctx_train})"),
            ("context", f"{est.n_ctx} tokens (batch {est.n_batch})"),
            ("weights", _size(est.weights)),
            ("KV cache", f"{_size(est.kv_cache)} (F16, {_size(est.kv_cache / est.n_ctx)} per token)"),
            ("working", _size(est.working)),
            ("total (CPU)", _size(est.total))]
    if est.available_ram is not None:
        rows.append(("available RAM", _size(est.available_ram)))
        rows.append(("largest context", f"{est.max_ctx_ram} tokens fit in available RAM"))
    for d in est.devices:
        rows.append((f"GPU {d.device.name}", f"{d.n_gpu_layers} of {hp.n_block + 1} layers fit ({_size(d.bytes_used)})"))
    for line in (f"{k:<16} {v}" for k, v in rows):
        print(line)
    for note in est.notes:
        print(f"note: {note}")


def _sampling_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-tokens", type=int, default=200, help="most tokens to generate (default 200)")
    p.add_argument("--temp", type=float, default=0.7, help="temperature, 0 = greedy (default 0.7)")
    p.add_argument("--top-k", type=int, default=40)
    p.add_argument("--top-p", type=float, default=0.4)
    p.add_argument("--min-p", type=float, default=0.0)
    p.add_argument("--repeat-penalty", type=float, default=1.18)
    p.add_argument("--n-ctx", type=int, default=2048, help="context length in tokens (default 2048)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the physical cores)")
    p.add_argument("--model-path", default=None, help="folder to look MODEL up in (default ~/.cache/gpt4all)")
    _device_args(p)


def _device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu (default), gpu, nvidia, amd, intel, kompute:<name> or "
                   "vulkan:<index>, as GPT4All(device=...); `gpt4all-core gpus` lists the devices")
    p.add_argument("--ngl", type=int, default=100, help="blocks to run on the GPU device (default 100: all)")


def _open_model(args: argparse.Namespace):
    from gpt4all_core.api import GPT4All
    return GPT4All(args.model, model_path=args.model_path, n_ctx=args.n_ctx, n_threads=args.threads,
                   device=args.device, ngl=args.ngl)


def _generate_options(args: argparse.Namespace) -> dict:
    return {"max_tokens": args.max_tokens, "temp": args.temp, "top_k": args.top_k, "top_p": args.top_p,
            "min_p": args.min_p, "repeat_penalty": args.repeat_penalty}


def _stream(pieces) -> None:
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    print()


def cmd_generate(args: argparse.Namespace) -> None:
    """The model's continuation of the prompt as it is (no chat template), streamed."""
    with _open_model(args) as model:
        _stream(model.generate(args.prompt, streaming=True, **_generate_options(args)))


def cmd_chat(args: argparse.Namespace) -> None:
    """A chat loop with streamed replies; /reset starts over, /exit (or end of input) leaves.
    Without a terminal on stdin it answers the questions it reads (or --question) and exits."""
    interactive = sys.stdin.isatty() and args.question is None
    with _open_model(args) as model:
        while True:
            with model.chat_session(system_message=args.system):
                questions = [args.question] if args.question is not None else None
                if questions is None and not interactive:
                    questions = [line.strip() for line in sys.stdin if line.strip()][:1] or ["Hello! Who are you?"]
                reset = False
                while True:
                    if questions is not None:
                        if not questions:
                            return
                        text = questions.pop(0)
                        print(f"> {text}")
                    else:
                        try:
                            text = input("> ").strip()
                        except EOFError:
                            print()
                            return
                    if text == "/exit":
                        return
                    if text == "/reset":
                        reset = True
                        break
                    if text:
                        _stream(model.generate(text, streaming=True, **_generate_options(args)))
                if not reset:
                    return


def cmd_convert(args: argparse.Namespace) -> None:
    """A Hugging Face BERT folder to GGUF (llama.cpp's bert layout)."""
    from gpt4all_core.convert import convert

    out = convert(args.src, args.out, args.type, pooling=args.pooling, name=args.name, progress=sys.stderr.isatty())
    print(f"{out} ({out.stat().st_size / 1e6:.1f} MB)")


def cmd_embed(args: argparse.Namespace) -> None:
    """The embedding of each text: a short summary, or the whole vector (--full / --json)."""
    from gpt4all_core.api import Embed4All

    with Embed4All(args.model, model_path=args.model_path, n_threads=args.threads, verbose=True) as model:
        result = model.embed(args.texts, prefix=args.prefix, dimensionality=args.dimensionality,
                             long_text_mode=args.long_text_mode, return_dict=True)
        if args.json:
            json.dump(result, sys.stdout)
            print()
            return
        for text, vector in zip(args.texts, result["embeddings"]):
            shown = vector if args.full else [*vector[:4], "...", *vector[-2:]]
            numbers = ", ".join(v if isinstance(v, str) else f"{v:.6f}" for v in shown)
            print(f"{text[:40]!r}: {len(vector)} dims [{numbers}]")
        print(f"{result['n_prompt_tokens']} prompt tokens, model {model.config['filename']}")


def _docs_index(db, name: str | None, folder: str | None) -> None:
    """docs add / docs update: a tqdm bar over the files; skipped files listed once, at the end."""
    import warnings

    from tqdm import tqdm

    bar = tqdm(unit="file", file=sys.stderr, disable=None, leave=False)

    def progress(done: int, total: int, path: str) -> None:
        bar.total = total
        bar.update(done - bar.n)
        if path:
            bar.set_postfix_str(path[-40:], refresh=False)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LocalDocs: skipped")
        try:
            stats = db.add(name, folder, progress=progress) if folder is not None else db.update(name, progress=progress)
        finally:
            bar.close()
    for path, reason in stats.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(stats.summary())


def cmd_docs(args: argparse.Namespace) -> None:
    """LocalDocs collections: add, update, list, remove, search."""
    from gpt4all_core.localdocs import LocalDocs

    with LocalDocs(args.db) as db:
        if args.docs_command == "add":
            _docs_index(db, args.name, args.folder)
        elif args.docs_command == "update":
            _docs_index(db, args.name, None)
        elif args.docs_command == "remove":
            db.remove(args.name)
            print(f"removed collection {args.name!r}")
        elif args.docs_command == "list":
            cols = db.collections()
            if args.json:
                json.dump(cols, sys.stdout, indent=2)
                print()
            for c in [] if args.json else cols:
                print(f"{c['name']}: {c['documents']} documents, {c['chunks']} chunks; {', '.join(c['folders'])}")
            if not cols and not args.json:
                print(f"no collections in {db.path}")
        elif args.docs_command == "search":
            refs = db.search(args.name, args.query, args.k)
            if args.json:
                json.dump([{**r.to_dict(), "path": r.path, "score": r.score} for r in refs], sys.stdout, indent=2)
                print()
                return
            for r in refs:
                where = f"page {r.page}" if r.page > 0 else f"lines {r.from_}-{r.to}"
                print(f"{r.score:.3f}  {r.path} ({where})")
                print("    " + " ".join(r.text.split())[:300])


def _device_use(d) -> str:
    """How a device can be used, for `gpt4all-core gpus`."""
    if d.problem():
        return f"unusable: {d.problem()}"
    if d.type == "cpu":
        return f"a CPU implementation of Vulkan: used only when named (--device vulkan:{d.index})"
    return f"--device kompute:{d.name}"


def cmd_gpus(args: argparse.Namespace) -> None:
    """Every Vulkan device, in index order, and what `--device gpu` picks."""
    from dataclasses import asdict

    from gpt4all_core.backend.vulkan import devices

    found, problem = devices.listing()
    if args.json:
        json.dump({"devices": [{**asdict(d), "problem": d.problem()} for d in found], "problem": problem,
                   "gpus": devices.list_gpus()}, sys.stdout, indent=2)
        print()
        return
    if not found:
        print(f"{problem}: only --device cpu is available")
        return
    for d in found:
        print(f"vulkan:{d.index}  {d.name}")
        print(f"    {d.type}, vendor {d.vendor}, {devices.format_bytes(d.device_local_bytes)} device-local, "
              f"subgroup {d.subgroup_size}, Vulkan {d.api_version}, driver {d.driver_version}")
        print(f"    {_device_use(d)}")
    try:
        best = devices.select_device("gpu")
        print(f"--device gpu picks vulkan:{best.index} ({best.name})")
    except ValueError:
        print("--device gpu: no GPU that can run the Vulkan backend here")


LOOPBACK = ("127.", "localhost", "::1", "[::1]")


def cmd_serve(args: argparse.Namespace) -> None:
    """The OpenAI-compatible server (see README: Serving)."""
    import uvicorn

    from gpt4all_core.api import GPT4All
    from gpt4all_core.server import ServerConfig, create_app
    from gpt4all_core.server.embeddings import Embed4AllEmbedder

    from gpt4all_core.backend.vulkan.devices import select_device

    for name in ("parallel", "n_ctx", "port", "max_queue", "n_batch", "max_body", "ngl"):
        value, least = getattr(args, name), 0 if name in ("max_queue", "ngl") else 1
        if value < least:
            raise ValueError(f"--{name.replace('_', '-')} must be {'non-negative' if least == 0 else 'positive'}, "
                             f"not {value}")
    device = select_device(args.device)  # before the model loads: a bad --device fails at once
    path = GPT4All.retrieve_model(args.model, args.model_path)["path"]
    template = None
    if args.chat_template:
        with open(args.chat_template, encoding="utf-8") as f:
            template = f.read()
    embedder = Embed4AllEmbedder(args.embedding_model, args.threads) if args.embedding_model else None
    config = ServerConfig(model_path=path, model_id=args.model_id, n_parallel=args.parallel, n_ctx=args.n_ctx,
                          n_batch=args.n_batch, n_threads=args.threads, max_queue=args.max_queue,
                          max_tokens=args.max_tokens, api_key_file=args.api_key_file,
                          cors_origins=args.cors_origin or [], chat_template=template, embedder=embedder,
                          max_body_bytes=args.max_body, localdocs=args.localdocs or [], localdocs_db=args.localdocs_db,
                          device=device, ngl=args.ngl)
    app = create_app(config)
    if not args.host.startswith(LOOPBACK) and not args.api_key_file:
        print(f"gpt4all-core serve: warning: listening on {args.host}, beyond this machine, and no --api-key-file "
              "is set: anyone who can reach the port can use the model", file=sys.stderr)
    print(f"gpt4all-core serve: {config.model_id or path} on http://{args.host}:{args.port}/v1 "
          f"({args.parallel} slot{'s' if args.parallel > 1 else ''} of {args.n_ctx} tokens)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpt4all-core", description="Local LLM inference: GGUF models on CPU and Vulkan.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="show what a GGUF file holds (a URL or hf: reference: its header only)")
    p.add_argument("file", help="a .gguf path, a model name, an hf:<user>/<repo>[:<quant>] reference or a URL")
    p.add_argument("--dir", default=None, help="models folder (default ~/.cache/gpt4all)")
    p.add_argument("--json", action="store_true", help="everything as JSON: summary, full metadata, tensor list")
    p.add_argument("--full-arrays", action="store_true", help="with --json: do not summarize long arrays")
    p.set_defaults(func=cmd_inspect)
    p = sub.add_parser("generate", help="continue a prompt (no chat template), streaming the text")
    p.add_argument("model", help="a .gguf path, or a file name in --model-path")
    p.add_argument("prompt")
    _sampling_args(p)
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("chat", help="chat with a model (/reset starts over, /exit leaves)")
    p.add_argument("model", help="a .gguf path, or a file name in --model-path")
    p.add_argument("--system", default=None, help="system message")
    p.add_argument("--question", default=None, help="ask this one question and exit")
    _sampling_args(p)
    p.set_defaults(func=cmd_chat)
    p = sub.add_parser("convert", help="convert a Hugging Face BERT folder (safetensors) to GGUF")
    p.add_argument("src", help="folder with config.json, model.safetensors and vocab.txt or tokenizer.json")
    p.add_argument("out", help="the .gguf file to write")
    p.add_argument("--type", choices=["f32", "f16", "q8_0"], default="f16", help="matrix type (default f16)")
    p.add_argument("--pooling", choices=["mean", "cls", "last", "none"], default=None,
                   help="bert.pooling_type (default: the folder's sentence-transformers Pooling, else mean)")
    p.add_argument("--name", default=None, help="general.name (default: the folder's name)")
    p.set_defaults(func=cmd_convert)
    p = sub.add_parser("embed", help="embed texts with a BERT model (default all-MiniLM-L6-v2)")
    p.add_argument("texts", nargs="+", metavar="TEXT", help="texts to embed; with --model, a first argument "
                   "ending in .gguf is taken as the model")
    p.add_argument("--model", default=None, help="a .gguf path or a file name in --model-path")
    p.add_argument("--model-path", default=None, help="folder to look the model up in (default ~/.cache/gpt4all)")
    p.add_argument("--prefix", default=None, help="task prefix for models that take one (e.g. search_query)")
    p.add_argument("--dimensionality", type=int, default=None)
    p.add_argument("--long-text-mode", choices=["mean", "truncate"], default="mean")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the physical cores)")
    p.add_argument("--full", action="store_true", help="print every component")
    p.add_argument("--json", action="store_true", help="print {embeddings, n_prompt_tokens} as JSON")
    p.set_defaults(func=cmd_embed)
    p = sub.add_parser("pull", help="download models (only missing or changed files; resumes)")
    p.add_argument("uri", nargs="+", help="catalog name, hf:<user>/<repo>[:<quant>], hf:<user>/<repo>/<file>[#<branch>] "
                   "or URL")
    p.add_argument("--dir", default=None, help="models folder (default ~/.cache/gpt4all)")
    p.add_argument("--connections", type=int, default=4, help="parallel connections for a large file (default 4)")
    p.set_defaults(func=cmd_pull)
    p = sub.add_parser("list", help="GPT4All's model catalog and the models downloaded")
    p.add_argument("--dir", default=None, help="models folder (default ~/.cache/gpt4all)")
    p.add_argument("--json", action="store_true", help="the catalog as JSON")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("estimate", help="memory a model needs: weights, KV cache, working memory; what fits")
    p.add_argument("model", help="a .gguf path or any model reference (not downloaded: its header is read remotely)")
    p.add_argument("--ctx", type=int, default=None, help="context length (default 2048 or the trained one if smaller)")
    p.add_argument("--batch", type=int, default=8, help="prompt batch size (default 8, as generate())")
    p.add_argument("--dir", default=None, help="models folder (default ~/.cache/gpt4all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_estimate)
    p = sub.add_parser("docs", help="LocalDocs: collections of document folders, indexed for retrieval")
    p.add_argument("--db", default=None, help="the database (default $GPT4ALL_CORE_LOCALDOCS_DB or "
                   "localdocs.db in the user data dir)")
    docs = p.add_subparsers(dest="docs_command", required=True)
    d = docs.add_parser("add", help="add a folder to a collection (made if new) and index it")
    d.add_argument("name")
    d.add_argument("folder")
    d = docs.add_parser("update", help="re-index changed, new and removed files (one collection or all)")
    d.add_argument("name", nargs="?", default=None)
    d = docs.add_parser("list", help="the collections, their folders and sizes")
    d.add_argument("--json", action="store_true")
    d = docs.add_parser("remove", help="drop a collection and its index (the files stay)")
    d.add_argument("name")
    d = docs.add_parser("search", help="the chunks of a collection nearest a query")
    d.add_argument("name")
    d.add_argument("query")
    d.add_argument("-k", type=int, default=3, help="how many chunks (default 3)")
    d.add_argument("--json", action="store_true", help="GPT4All's references entries, with path and score")
    p.set_defaults(func=cmd_docs)
    p = sub.add_parser("bench", add_help=False, help="tokens/s of models (llama-bench style), kernels against the "
                       "roofline, plots; `gpt4all-core bench --help`")
    p.add_argument("args", nargs=argparse.REMAINDER)  # main() hands these to gpt4all_core.bench.cli
    p = sub.add_parser("serve", help="an OpenAI-compatible HTTP API (chat, completions, embeddings)")
    p.add_argument("model", help="a .gguf path, or a file name in --model-path")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=4891, help="default 4891, as GPT4All")
    p.add_argument("--api-key-file", default=None, help="JSON file of API keys and their limits (see README)")
    p.add_argument("--parallel", type=int, default=4, help="requests decoding together (default 4)")
    p.add_argument("--n-ctx", type=int, default=2048, help="context per request slot, in tokens (default 2048)")
    p.add_argument("--n-batch", type=int, default=128, help="tokens per forward pass (default 128)")
    p.add_argument("--max-queue", type=int, default=64, help="requests that may wait for a slot before 503 (64)")
    p.add_argument("--max-tokens", type=int, default=None, help="cap on any request's max_tokens")
    p.add_argument("--max-body", type=int, default=4 << 20, help="largest request body in bytes (default 4 MiB)")
    p.add_argument("--cors-origin", action="append", default=None, metavar="ORIGIN",
                   help="allow browser requests from this origin (repeat; '*' for any)")
    p.add_argument("--model-id", default=None, help="the id clients name (default: the file name)")
    p.add_argument("--chat-template", default=None, metavar="FILE", help="Jinja chat template overriding the GGUF's")
    p.add_argument("--embedding-model", default=None, metavar="FILE", help="GGUF embedding model for /v1/embeddings")
    p.add_argument("--localdocs", action="append", default=None, metavar="NAME",
                   help="LocalDocs collection for chats whose request names none (repeatable)")
    p.add_argument("--localdocs-db", default=None, metavar="FILE", help="LocalDocs database (default: the user's)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the physical cores)")
    p.add_argument("--model-path", default=None, help="folder to look MODEL up in (default ~/.cache/gpt4all)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    _device_args(p)
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("gpus", aliases=["list-gpus"], help="the Vulkan devices: type, memory, subgroup size, "
                       "driver, and what --device names them")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_gpus)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # three forms (MODEL..., kernels, plot), each with its own parser
        from gpt4all_core.bench.cli import main as bench_main
        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "embed" and args.model is None and len(args.texts) > 1 and args.texts[0].endswith(".gguf"):
        args.model, args.texts = args.texts[0], args.texts[1:]  # gpt4all-core embed MODEL TEXT...
    try:
        args.func(args)
    except (GPT4AllCoreError, FileNotFoundError, ValueError) as e:
        print(f"gpt4all-core {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `| head` closed the pipe
        return 0
    except KeyboardInterrupt:
        print(f"gpt4all-core {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
