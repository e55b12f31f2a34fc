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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpt4all-core", description="Local LLM inference: GGUF models on CPU and Vulkan.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="show what a GGUF file holds")
    p.add_argument("file", help="path of a .gguf file")
    p.add_argument("--json", action="store_true", help="everything as JSON: summary, full metadata, tensor list")
    p.add_argument("--full-arrays", action="store_true", help="with --json: do not summarize long arrays")
    p.set_defaults(func=cmd_inspect)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except GPT4AllCoreError as e:
        print(f"gpt4all-core {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `| head` closed the pipe
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
