"""Text preparation: input formats, cleaning of hostile strings, and sentence splitting.

Everything here is pure string work shared by inference and training, so that a model is
always fed text shaped exactly as it was trained on.
"""

from __future__ import annotations

import enum
import re

__all__ = [
    "PLACEHOLDER",
    "InputFormat",
    "MatchType",
    "check_text",
    "clean_text",
    "format_input",
    "role_tagged",
    "split_conversation",
    "split_sentences",
]

#: Stands for omitted content, as in the agentlans refusal classifier's training data.
PLACEHOLDER = "<|...|>"

_ROLE_TAGS = ("<|system|>", "<|user|>", "<|assistant|>")
#: How much of a long prompt is kept (its end, where the latest user turn is).
PROMPT_CHARS = 600


class InputFormat(str, enum.Enum):
    """How a (prompt, output) pair becomes the one string a model reads."""

    #: The output alone (ProtectAI's model, the embedded default).
    RESPONSE = "response"
    #: ``<|user|>{prompt}<|assistant|>{output}`` (agentlans' model).
    CONVERSATION = "conversation"


class MatchType(str, enum.Enum):
    """How much of an output one classifier call sees (LLM Guard's ``MatchType``)."""

    #: One input per output: its head and tail joined by :data:`PLACEHOLDER` when long.
    FULL = "full"
    #: One input per sentence; the output's score is the highest sentence score.
    SENTENCE = "sentence"


def check_text(value: object, name: str) -> str:
    """Return ``value`` as text for argument ``name``.

    ``None`` counts as empty text (OpenAI returns ``content=None`` for tool calls); any other
    non-string raises :class:`TypeError` naming the argument.
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        hint = ""
        if isinstance(value, (list, tuple)):  # OpenAI or LangChain messages, content parts
            hint = " Pass its text: the last user message, or the parts joined into one string."
        raise TypeError(f"{name} must be a str or None, not {type(value).__name__}.{hint}")
    return value


def clean_text(text: str) -> str:
    """Replace lone surrogates, which no tokenizer can encode, with U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def format_input(prompt: str, output: str, fmt: InputFormat) -> str:
    """Build the model input for one pair.

    In the conversation format a prompt that is already role-tagged (it contains ``<|user|>``
    or another role tag) is kept as it is; a plain prompt becomes a user turn. Only the last
    :data:`PROMPT_CHARS` characters of a long prompt are kept, behind :data:`PLACEHOLDER`
    (``<|user|><|...|>{end of prompt}`` for a plain one).
    """
    if fmt is InputFormat.RESPONSE:
        return output
    tagged = any(tag in prompt for tag in _ROLE_TAGS)
    if len(prompt) > PROMPT_CHARS:
        prompt = PLACEHOLDER + prompt[-PROMPT_CHARS:]
    if prompt and not tagged:
        prompt = "<|user|>" + prompt
    return f"{prompt}<|assistant|>{output}"


#: Closing quotes and brackets that belong to the sentence they follow (``。」``, ``."``).
_CLOSERS = "\"'\u2019\u201d\u00bb)\\]\u300d\u300f\uff09\u3011\u3015\u3009\u300b\uff63"
#: Sentence ends of scripts written without spaces, or where the mark alone ends a sentence:
#: CJK full stops (ideographic, full-width, half-width), full-width ! and ?, Devanagari danda
#: and double danda, the Arabic question mark, the Urdu full stop, Khmer, Myanmar and
#: Ethiopic full stops, the Ethiopic question mark.
_OWN_ENDS = "\u3002\uff0e\uff61\uff01\uff1f\u0964\u0965\u061f\u06d4\u17d4\u17d5\u104b\u1362\u1367"
#: Thai and Lao write no sentence punctuation: a space between two of their letters ends one.
_SPACED_SCRIPTS = "\u0e00-\u0eff"

_SENTENCE_END = re.compile(
    # Latin-style: . ! ? or an ellipsis, closers, then whitespace (so 2.5 and e.g.x stay whole)
    f"[.!?\u2026]+[{_CLOSERS}]*\\s+"
    # a mark that ends a sentence by itself, a run of them (！？), closers, any whitespace
    f"|[{_OWN_ENDS}][{_OWN_ENDS}!?]*[{_CLOSERS}]*\\s*"
    f"|(?<=[{_SPACED_SCRIPTS}])\\s+(?=[{_SPACED_SCRIPTS}])"
    "|\\n+"
)


def split_sentences(text: str, *, max_sentences: int = 64) -> list[str]:
    """Split ``text`` into sentences with a regular expression (no download, no model).

    A sentence ends at ``.``, ``!``, ``?`` or ``…`` followed by whitespace; at a mark that
    ends a sentence without one (Chinese and Japanese ``。！？．``, Devanagari ``।``, Arabic
    ``؟``, Urdu ``۔``, Khmer, Myanmar, Ethiopic); at a space between two Thai or Lao letters
    (they have no sentence punctuation); and at a line break. A sentence keeps its end mark
    and the closing quotes or brackets after it (``「…。」``).

    At most ``max_sentences`` pieces come back: the first ``max_sentences - 1`` sentences and
    the rest of the text as the last piece, so the cost stays bounded on huge outputs.
    """
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        piece = text[start : match.end()].strip()
        start = match.end()
        if piece:
            pieces.append(piece)
            if len(pieces) == max_sentences - 1:
                break
    rest = text[start:].strip()
    if rest:
        pieces.append(rest)
    return pieces


def _content_text(content: object) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return ""


def role_tagged(messages: object) -> str:
    """Render OpenAI-style ``messages`` as ``<|system|>…<|user|>…<|assistant|>…``.

    Roles other than system, user and assistant (tool, developer...) are folded in:
    ``developer`` as system, ``tool``/``function`` skipped. Content may be a string or a list
    of text parts; other parts (images, audio) are skipped.
    """
    if not isinstance(messages, list):
        raise TypeError(f"messages must be a list, not {type(messages).__name__}.")
    out: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            raise TypeError("each message must be a mapping with 'role' and 'content'.")
        role = {"developer": "system"}.get(str(message.get("role")), str(message.get("role")))
        if role not in ("system", "user", "assistant"):
            continue
        out.append(f"<|{role}|>{_content_text(message.get('content'))}")
    return "".join(out)


def split_conversation(messages: object) -> tuple[str, str]:
    """Split a conversation into (role-tagged prompt, last assistant message's text)."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list.")
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "assistant":
        raise ValueError("the last message must be the assistant's answer to scan.")
    return role_tagged(messages[:-1]), _content_text(last.get("content"))
