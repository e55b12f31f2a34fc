"""Token attributes as llama.cpp derives them: from tokenizer.ggml.token_type, then overridden by
token text and model name (facts taken from llama.cpp's vocabulary loader, which converters rely on:
e.g. '</s>' or '<end_of_turn>' typed as user-defined or normal still behave as control tokens)."""
from __future__ import annotations

from enum import IntFlag

import numpy as np

from gpt4all_core.tokenizer.vocab import TokenType, Vocab


class Attr(IntFlag):
    UNKNOWN = 1 << 0
    UNUSED = 1 << 1
    NORMAL = 1 << 2
    CONTROL = 1 << 3
    USER_DEFINED = 1 << 4
    BYTE = 1 << 5
    LSTRIP = 1 << 7
    RSTRIP = 1 << 8


FROM_TYPE = {TokenType.UNDEFINED: 0, TokenType.NORMAL: Attr.NORMAL, TokenType.UNKNOWN: Attr.UNKNOWN,
             TokenType.CONTROL: Attr.CONTROL, TokenType.USER_DEFINED: Attr.USER_DEFINED,
             TokenType.UNUSED: Attr.UNUSED, TokenType.BYTE: Attr.BYTE}

# Roles found by text when the metadata names no id: the first match becomes a control token.
ROLE_TEXTS = {
    "eot": ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
            "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"),
    "eom": ("<|eom_id|>",),
    "fim_pre": ("<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
                "<|code_prefix|>", "<|prefix|>"),
    "fim_suf": ("<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
                "<|code_suffix|>", "<|suffix|>"),
    "fim_mid": ("<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
                "<|code_middle|>", "<|middle|>"),
    "fim_pad": ("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"),
    "fim_rep": ("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"),
    "fim_sep": ("<|file_sep|>",),
}
# End-of-generation texts: every match becomes a control token.
EOG_TEXTS = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
             "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
             "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
             "<｜end▁of▁sentence｜>", "[e~[")


# gpt-oss: rendered always, whatever their type says
ALWAYS_RENDERED = ("<|channel|>", "<|message|>", "<|start|>", "<|constrain|>")


def token_attributes(vocab: Vocab, ids: dict[str, int], model_name: str, pre: str | None, arch: str | None) -> np.ndarray:
    # one lookup for the whole vocabulary (Vocab has checked the types): Gemma 3 has 262,144 tokens
    by_type = np.array([int(FROM_TYPE[TokenType(t)]) for t in range(max(TokenType) + 1)], dtype=np.int64)
    attrs = by_type[np.asarray(vocab.types, dtype=np.int64)]
    roles = _find_roles(vocab, ids, attrs)
    for i in np.flatnonzero(attrs & Attr.CONTROL):  # control tokens named "unused" are unused
        if "unused" in vocab.tokens[i]:
            attrs[i] |= Attr.UNUSED
    eog = {roles[r] for r in ("fim_pad", "fim_rep", "fim_sep", "eos", "eot", "eom") if r in roles}
    for text in EOG_TEXTS:
        if text in ids:
            attrs[ids[text]] |= Attr.CONTROL
            eog.add(ids[text])
    for text in ALWAYS_RENDERED:
        if text in ids:
            attrs[ids[text]] = Attr.USER_DEFINED
    _fix_end_of_generation(vocab, attrs, eog)
    _name_overrides(attrs, ids, model_name.lower(), pre or "", arch or "")
    return attrs


def _find_roles(vocab: Vocab, ids: dict[str, int], attrs: np.ndarray) -> dict[str, int]:
    """Role -> id: the metadata's, else the first token with a role's text, made a control token."""
    roles = {r: vocab.special[r] for r in ("eos", "eot", "eom") if r in vocab.special}
    for role, texts in ROLE_TEXTS.items():
        if role in vocab.special:
            continue
        found = sorted(ids[t] for t in texts if t in ids)  # llama.cpp takes the first its hash map yields
        if found:
            attrs[found[0]] |= Attr.CONTROL
            roles[role] = found[0]
    return roles


def _fix_end_of_generation(vocab: Vocab, attrs: np.ndarray, eog: set[int]) -> None:
    """llama.cpp's two corrections: with <|return|> and <|call|> (gpt-oss) or <|calls|> and <|flush|>
    (solar-open), <|end|> is no end of generation but a rendered token; with <|tool_response>
    (Gemma 4) or <|plamo:eos|>, </s> is a normal token."""
    texts = {vocab.tokens[i]: i for i in sorted(eog) if 0 <= i < len(vocab.tokens)}
    has_call = "<|call|>" in texts or "<|calls|>" in texts
    if "<|end|>" in texts and has_call and ("<|return|>" in texts or "<|flush|>" in texts):
        attrs[texts["<|end|>"]] = Attr.USER_DEFINED
    if "</s>" in texts and ("<|tool_response>" in texts or "<|plamo:eos|>" in texts):
        attrs[texts["</s>"]] = Attr.NORMAL


def _name_overrides(attrs: np.ndarray, ids: dict[str, int], name: str, pre: str, arch: str) -> None:
    """LSTRIP/RSTRIP by model, tokenizer or architecture name."""
    if any(p in pre for p in ("jina-v2-de", "jina-v2-es", "jina-v2-code")) or \
            any(a in arch for a in ("nomic-bert-moe", "jina-bert-v3")):
        if "<mask>" in ids:
            attrs[ids["<mask>"]] |= Attr.LSTRIP
    elif "phi-3" in name or "phi3" in name:
        special = Attr.CONTROL | Attr.USER_DEFINED | Attr.UNKNOWN
        attrs[(attrs & special) != 0] |= Attr.RSTRIP
        if "</s>" in ids:
            attrs[ids["</s>"]] |= Attr.RSTRIP
        for text in ("<unk>", "<s>", "<|endoftext|>"):
            if text in ids:
                attrs[ids[text]] &= ~Attr.RSTRIP
    elif "modern-bert" in name and "[MASK]" in ids:
        attrs[ids["[MASK]"]] |= Attr.LSTRIP
