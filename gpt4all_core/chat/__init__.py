"""Chat templates (Jinja, from the GGUF's tokenizer.chat_template or given) and chat history."""
from gpt4all_core.chat.template import ChatTemplate, ChatTemplateError, Message

__all__ = ["ChatTemplate", "ChatTemplateError", "Message"]
