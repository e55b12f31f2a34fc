"""What each `tokenizer.ggml.pre` value means to llama.cpp (llama_vocab::impl::load and the
llm_tokenizer_bpe constructor): the pre-tokenizer's split rules and the flags that come with it.

The rules are the C++ ones of pretokenize.hpp, by number (Rule). A name llama.cpp knows but whose
regexes we have not written has rules=None: the tokenizer refuses it by name; a name llama.cpp does
not know is an error, as it is there.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Rule(IntEnum):
    """pretokenize.hpp's SplitRule, in its order."""

    GPT2 = 0
    LLAMA3 = 1
    QWEN2 = 2
    QWEN35 = 3
    NEWLINES = 4
    NUMBER_EACH = 5
    NUMBER_RUN = 6
    ASCII_DIGIT3 = 7
    PUNCT_RUN = 8
    CRLF_EACH = 9
    WS_LETTER_RUN = 10
    WS_PUNCT_RUN = 11
    CJK_RUN = 12
    WS_LATIN_RUN = 13
    WS_SYMBOL_RUN = 14
    TRAILING_WS = 15
    PUNCT_TICK_RUN = 16


R = Rule
DEFAULT_RULES = (R.PUNCT_RUN, R.GPT2, R.NUMBER_RUN, R.ASCII_DIGIT3)
GPT2_RULES = (R.GPT2,)
STARCODER_RULES = (R.NUMBER_EACH, R.GPT2)
LLAMA3_RULES = (R.LLAMA3,)
QWEN2_RULES = (R.QWEN2,)
RULES_BY_TYPE = {
    "default": DEFAULT_RULES,
    "llama3": LLAMA3_RULES,
    "deepseek-llm": (R.CRLF_EACH, R.WS_LATIN_RUN, R.WS_SYMBOL_RUN, R.TRAILING_WS, R.CJK_RUN, R.NUMBER_RUN),
    "deepseek-coder": (R.CRLF_EACH, R.WS_LETTER_RUN, R.WS_PUNCT_RUN, R.CJK_RUN, R.NUMBER_EACH),
    "falcon": (R.PUNCT_TICK_RUN, R.GPT2, R.ASCII_DIGIT3),
    "starcoder": STARCODER_RULES,
    "gpt2": GPT2_RULES,
    "qwen2": QWEN2_RULES,
    "qwen35": (R.QWEN35,),
    "gemma4": (R.NEWLINES,),
    "sarvam-moe": (R.NEWLINES,),
    "laguna": (R.NEWLINES, R.QWEN2),
}


@dataclass(frozen=True)
class PreTokenizer:
    type: str  # llama.cpp's pre-type (several names share one)
    rules: tuple[Rule, ...] | None  # None: llama.cpp knows it, we do not run it yet
    clean_spaces: bool = True  # detokenizing tidies " ." and " 's" (clean_up_tokenization_spaces)
    ignore_merges: bool = False  # a word that is a token is that token, unmerged
    add_bos: bool = False  # the default where the file does not say
    byte_encode: bool = True  # GPT-2's byte-to-unicode mapping; False: raw UTF-8 and <0xXX> byte tokens
    escape_whitespaces: bool = False  # spaces become U+2581 before splitting (SentencePiece-style BPE)
    no_bos: bool = False  # no default BOS id (ChatGLM)


def _pre(type_: str, **flags) -> PreTokenizer:
    return PreTokenizer(type_, RULES_BY_TYPE.get(type_), **flags)


def _names(names: str, pre: PreTokenizer) -> dict[str, PreTokenizer]:
    return dict.fromkeys(names.split(), pre)


KEEP = {"clean_spaces": False}
PRE_TOKENIZERS: dict[str, PreTokenizer] = {
    **_names("default", _pre("default")),
    **_names("llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2 jina-v5-nano",
             _pre("llama3", ignore_merges=True, add_bos=True)),
    **_names("dbrx smaug-bpe", _pre("llama3")),
    **_names("chatglm-bpe", _pre("llama3", no_bos=True)),
    **_names("glm4 glm5", _pre("llama3", no_bos=True, ignore_merges=True)),
    **_names("deepseek-llm", _pre("deepseek-llm", **KEEP)),
    **_names("deepseek-coder", _pre("deepseek-coder", **KEEP)),
    **_names("falcon", _pre("falcon")),
    **_names("starcoder refact codeshell exaone minerva-7b mellum2", _pre("starcoder")),
    **_names("command-r smollm", _pre("starcoder", **KEEP)),
    **_names("gpt-2 phi-2 jina-es jina-de gigachat jina-v2-es jina-v2-de a.x-4.0 mellum modern-bert mpt olmo "
             "jais exaone4 jina-v1-en jina-v2-code roberta-bpe", _pre("gpt2")),
    **_names("trillion granite-docling", _pre("gpt2", **KEEP)),
    **_names("stablelm2 megrez", _pre("qwen2")),
    **_names("qwen2 deepseek-r1-qwen kormo f2llmv2 hunyuan grok-2 solar-open", _pre("qwen2", **KEEP)),
    **_names("qwen35", _pre("qwen35", **KEEP)),
    **_names("laguna", _pre("laguna", **KEEP)),
    **_names("gemma4 granite-embed-multi-311m", _pre("gemma4", byte_encode=False, escape_whitespaces=True)),
    **_names("sarvam-moe", _pre("sarvam-moe", byte_encode=False, escape_whitespaces=True, **KEEP)),
    # known to llama.cpp, regexes not written here yet
    **_names("minicpm5", _pre("minicpm5", ignore_merges=True)),
    **_names("youtu granite-embed-multi-97m", _pre("unsupported", ignore_merges=True, **KEEP)),
    **_names("tekken", _pre("tekken", ignore_merges=True, add_bos=True, **KEEP)),
    **_names("chameleon", _pre("chameleon", add_bos=True, **KEEP)),
    **_names("jais-2 bloom gpt3-finnish exaone-moe whitespace", _pre("unsupported")),
    **_names("deepseek-v3 spark2_5 poro-chat viking gpt-4o llama4 kanana2 talkie tiny_aya cohere2moe superbpe "
             "bailingmoe bailingmoe2 llada-moe seed-coder hunyuan-dense hy_v4 joyai-llm kimi-k2 ufakzeka afmoe "
             "minimax-m2", _pre("unsupported", **KEEP)),
}


def pre_tokenizer(model: str, pre: str | None) -> PreTokenizer | None:
    """The pre-tokenizer a BPE vocabulary declares; None for a name llama.cpp does not know (an error
    there too). A missing name is "default", as in llama.cpp (which warns that quality will suffer);
    the gemma4 tokenizer model always means the gemma4 pre-tokenizer."""
    if model == "gemma4":
        pre = "gemma4"
    return PRE_TOKENIZERS.get(pre or "default")
