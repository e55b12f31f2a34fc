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
    return parser


def main(argv: list[str] | None = None) -> int:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
