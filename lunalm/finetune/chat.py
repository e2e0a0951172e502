"""Multi-turn chat with an instruction-tuned checkpoint: the pure parts behind ``luna chat``.

A conversation is a list of messages (``{"role": system|user|assistant, "content": text}``) rendered
with the checkpoint's chat template (``Tokenizer.chat_template``, saved by ``luna finetune``; lunalm's
``DEFAULT_TEMPLATE`` when there is none) plus the generation prompt for the assistant's turn, exactly
as the model saw its training examples (``lunalm.finetune.instructions.tokenize_example``). The
assistant's answer ends at the end-of-turn token: end-of-text, or the special token the template writes
after an answer (``<|im_end|>``, ``<end_of_turn>``; ``instructions.turn_end_ids``).

The prompt must leave room for the answer inside the model's context: ``fit_history`` drops whole turns
(a user message and the assistant answer that follows it), oldest first, until the rendered prompt fits
``context_length - max_new_tokens`` tokens; the system message and the newest user message always stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from lunalm.finetune.instructions import DEFAULT_TEMPLATE, compile_template


@dataclass(frozen=True)
class ChatTemplate:
    """A compiled chat template and where it came from."""

    template: object  # jinja2 Template
    is_default: bool  # True: the checkpoint stored none, lunalm's DEFAULT_TEMPLATE is used


def chat_template_of(tokenizer) -> ChatTemplate:
    """The tokenizer's stored chat template, else lunalm's default one (``is_default`` says which)."""
    stored = tokenizer.chat_template
    return ChatTemplate(compile_template(stored or DEFAULT_TEMPLATE), is_default=not stored)


def with_system(system: str | None, history: list[dict]) -> list[dict]:
    """The messages to render: the system message (when given) followed by the history."""
    return ([{"role": "system", "content": system}] if system else []) + list(history)


def render_prompt(messages: list[dict], template, eos_token: str, bos_token: str = "") -> str:
    """The conversation so far plus the generation prompt of the assistant's next turn; a conversation the
    template refuses (``raise_exception``: "System role not supported") is a ConfigError with its message."""
    from lunalm.errors import ConfigError
    from lunalm.finetune.instructions import TemplateRefused

    try:
        return template.render(messages=messages, add_generation_prompt=True, eos_token=eos_token,
                               bos_token=bos_token)
    except TemplateRefused as refusal:
        raise ConfigError(f"the checkpoint's chat template refuses this conversation: {refusal}") from None


def turn_starts(history: list[dict]) -> list[int]:
    """Indices of the user messages in ``history``: where each turn begins."""
    return [index for index, message in enumerate(history) if message["role"] == "user"]


@dataclass(frozen=True)
class Fitted:
    history: list[dict]  # what is kept (a suffix of the history, starting at a user turn)
    dropped_turns: int  # whole turns removed from the front
    prompt: str  # the rendered prompt of what is kept
    n_tokens: int  # its length in tokens
    fits: bool  # False: even the newest turn alone is longer than the budget (its end is kept)


def fit_history(history: list[dict], system: str | None, render: Callable[[list[dict]], str],
                count: Callable[[str], int], budget: int) -> Fitted:
    """Drop the oldest turns until ``render(with_system(system, kept))`` is at most ``budget`` tokens.

    ``render`` maps messages to the prompt text and ``count`` text to its token count; the newest turn is
    never dropped (if it alone is too long, ``fits`` is False and generation keeps the prompt's end).
    """
    for dropped, start in enumerate(turn_starts(history) or [0]):  # the last start: the newest turn alone
        kept = history[start:]
        prompt = render(with_system(system, kept))
        n_tokens = count(prompt)
        if n_tokens <= budget:
            return Fitted(kept, dropped, prompt, n_tokens, True)
    return Fitted(kept, dropped, prompt, n_tokens, False)


def prompt_budget(context_length: int, max_new_tokens: int) -> int:
    """Prompt tokens that leave ``max_new_tokens`` for the answer (at least half the context)."""
    return max(context_length - max_new_tokens, context_length // 2, 1)


@dataclass(frozen=True)
class RoleWrappers:
    """The text a chat template writes around each turn, as Ollama's Go templates need it: ``prefix[role]`` +
    content + ``suffix[role]``; ``generation`` opens the assistant's turn; ``preamble`` is what the template
    writes before a conversation that has no system message (Qwen2.5's default system prompt, Llama 3's
    date header). ``system`` False: the template has no system turn (it refuses one)."""

    prefix: dict
    suffix: dict
    generation: str
    system: bool
    preamble: str = ""


def role_wrappers(template, eos_token: str, bos_token: str = "") -> RoleWrappers | None:
    """What ``template`` writes around each role's content, found by rendering marked conversations; None
    when it does not render turns as text around their content (a template that rewrites the content)."""
    marks = {"system": "\x02S\x03", "user": "\x02U\x03", "assistant": "\x02A\x03", "next": "\x02N\x03"}

    def render(messages, prompt):
        return template.render(messages=messages, add_generation_prompt=prompt, eos_token=eos_token,
                               bos_token=bos_token)

    user, answer = {"role": "user", "content": marks["user"]}, {"role": "assistant", "content": marks["assistant"]}
    try:
        asked, alone, both = render([user], True), render([user], False), render([user, answer], False)
        again = render([user, answer, {"role": "user", "content": marks["next"]}], False)
    except Exception:  # a template that refuses even one user turn
        return None
    if not (asked.startswith(alone) and both.startswith(alone) and again.startswith(both) and marks["user"] in alone
            and marks["assistant"] in both and marks["next"] in again):
        return None
    prefix, suffix = {}, {}
    first, suffix["user"] = alone.split(marks["user"])
    prefix["user"] = again[len(both):].split(marks["next"])[0]  # a user turn after the first
    if not first.endswith(prefix["user"]):
        return None
    preamble = first[:len(first) - len(prefix["user"])]
    prefix["assistant"], suffix["assistant"] = both[len(alone):].split(marks["assistant"])
    system = True
    try:
        with_system = render([{"role": "system", "content": marks["system"]}, user], False)
        head, rest = with_system.split(marks["system"])
        turn = prefix["user"] + marks["user"] + suffix["user"]
        if not rest.endswith(turn):
            raise ValueError("the system turn is not text before the first user turn")
        prefix["system"], suffix["system"] = head, rest[:len(rest) - len(turn)]
    except Exception:  # TemplateRefused ("System role not supported") and templates that merge the turns
        system = False
    return RoleWrappers(prefix, suffix, asked[len(alone):], system, preamble)
