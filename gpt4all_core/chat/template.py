"""Jinja chat templates as Hugging Face and GPT4All render them: a sandbox (a template from a
downloaded file runs no Python), trim_blocks and lstrip_blocks, loop controls, raise_exception()
and strftime_now(), and the model's special tokens (bos_token, eos_token, ...) as variables."""
from __future__ import annotations

from datetime import datetime
from typing import TypedDict

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from gpt4all_core.errors import GPT4AllCoreError

ROLES = ("system", "user", "assistant", "tool")


class Message(TypedDict):
    role: str
    content: str


class ChatTemplateError(GPT4AllCoreError, ValueError):
    """A chat template is missing, does not parse, or failed while rendering."""


def _raise_exception(message: str):
    raise ChatTemplateError(f"the chat template refused the messages: {message}")


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


class ChatTemplate:
    """A compiled chat template. render(messages) gives the prompt text for them."""

    def __init__(self, source: str, special_tokens: dict[str, str] | None = None):
        if not isinstance(source, str) or not source.strip():
            raise ChatTemplateError("chat_template: expected a non-empty Jinja template string")
        self.source = source
        self.special_tokens = dict(special_tokens or {})
        try:
            self._template = _environment().from_string(source)
        except jinja2.TemplateSyntaxError as e:
            raise ChatTemplateError(f"chat_template: line {e.lineno}: {e.message}") from None

    def render(self, messages: list[Message], add_generation_prompt: bool = True) -> str:
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or not isinstance(m.get("content"), str) or m.get("role") not in ROLES:
                raise ValueError(f"messages[{i}]: expected {{'role': one of {ROLES}, 'content': str}}, got {m!r}")
        try:
            return self._template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                         **self.special_tokens)
        except ChatTemplateError:
            raise
        except jinja2.TemplateError as e:
            raise ChatTemplateError(f"chat_template failed while rendering: {e}") from None
