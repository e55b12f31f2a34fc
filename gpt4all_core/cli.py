"""The `gpt4all-core` command."""
from __future__ import annotations

import argparse
import json
import sys

from gpt4all_core.errors import GPT4AllCoreError


def cmd_inspect(args: argparse.Namespace) -> None:
    from gpt4all_core import gguf
    from gpt4all_core.gguf.summary import format_summary, metadata_json, summarize

    with gguf.open(args.file) as gf:
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


def _open_model(args: argparse.Namespace):
    from gpt4all_core.api import GPT4All
    return GPT4All(args.model, model_path=args.model_path, n_ctx=args.n_ctx, n_threads=args.threads)


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


LOOPBACK = ("127.", "localhost", "::1", "[::1]")


def cmd_serve(args: argparse.Namespace) -> None:
    """The OpenAI-compatible server (see README: Serving)."""
    import uvicorn

    from gpt4all_core.api import GPT4All
    from gpt4all_core.server import ServerConfig, create_app
    from gpt4all_core.server.embeddings import Embed4AllEmbedder

    for name in ("parallel", "n_ctx", "port", "max_queue", "n_batch", "max_body"):
        value = getattr(args, name)
        if value < (0 if name == "max_queue" else 1):
            raise ValueError(f"--{name.replace('_', '-')} must be positive, not {value}")
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
                          max_body_bytes=args.max_body)
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
    p = sub.add_parser("inspect", help="show what a GGUF file holds")
    p.add_argument("file", help="path of a .gguf file")
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
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the physical cores)")
    p.add_argument("--model-path", default=None, help="folder to look MODEL up in (default ~/.cache/gpt4all)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (GPT4AllCoreError, FileNotFoundError, ValueError) as e:
        print(f"gpt4all-core {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `| head` closed the pipe
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
