"""GPT4All.chat_session(localdocs=[...]): each user message goes to the model after GPT4All's
"### Context:" block of the retrieved snippets, the history keeps what the model saw, and
model.last_references holds the chunks of the last reply."""
from __future__ import annotations

import pytest
from localdocs_corpus import PLANTED
from model_files import SMOLLM2, random_model

from gpt4all_core import GPT4All
from gpt4all_core.localdocs import format_context

TEMPLATE = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}</s>{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def test_snippets_go_before_the_message(indexed, corpus):
    db, _ = indexed
    name, passage, question = PLANTED[1]  # the Lisbon wifi password
    with GPT4All(str(random_model("llama")), n_ctx=1024) as m:
        with m.chat_session(chat_template=TEMPLATE, localdocs=["corpus"], localdocs_db=db):
            m.generate(question, max_tokens=3, temp=0)
            refs = m.last_references
            assert len(refs) == 3 and refs[0].path == str(corpus / name)
            user = m.current_chat_session[0]
            assert user["role"] == "user" and user["content"] == format_context(refs) + question
            assert user["content"].startswith(f"### Context:\nCollection: corpus\nPath: {corpus / name}\nExcerpt: ")
            assert passage in user["content"] and user["content"].endswith("\n\n" + question)
            m.generate("Which song can the parrot whistle?", max_tokens=3, temp=0)
            assert m.last_references[0].file == "parrot.html"
        with m.chat_session(chat_template=TEMPLATE):  # without localdocs: the message as it is
            m.generate(question, max_tokens=1, temp=0)
            assert m.current_chat_session[0]["content"] == question and m.last_references == []
        with pytest.raises(ValueError, match="localdocs"):
            with m.chat_session(chat_template=TEMPLATE, localdocs="corpus"):
                pass
        with pytest.raises(ValueError, match="localdocs_k"):
            with m.chat_session(chat_template=TEMPLATE, localdocs=["corpus"], localdocs_k=0):
                pass


def test_smollm2_answers_from_the_documents(indexed):
    """GPT4All's default of 3 snippets. A 135M model is sensitive to its context: with 1 snippet its
    answer ignores the passage, and CI once saw the 2-snippet answer do so while it held here for
    every corpus path tried; with 3 it held for all of them. A failure prints what the model saw."""
    db, _ = indexed
    with GPT4All(str(SMOLLM2), n_ctx=2048) as m, m.chat_session(localdocs=["corpus"], localdocs_db=db):
        answer = m.generate("What is the guest wifi password for the Lisbon office?", max_tokens=24, temp=0)
        seen = m.current_chat_session[0]["content"]
    assert "BlueHeron42" in answer.replace(" ", ""), f"answer {answer!r} to:\n{seen}"
