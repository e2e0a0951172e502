"""``luna chat CKPT``: talk to an instruction-tuned checkpoint in the terminal, answers streamed.

Each line typed is a user turn; the whole conversation is rendered with the checkpoint's chat template
(lunalm.finetune.chat) and the answer is sampled with ``lunalm.generate`` (the sampler of
``luna generate``), stopping at the end-of-turn token. Lines starting with ``/`` are commands.
"""

from __future__ import annotations

import sys
import textwrap

COMMANDS = "/reset forgets the conversation, /exit (or Ctrl-D, Ctrl-C) leaves"


def add_chat_parser(commands) -> None:
    from lunalm.cli import _formatter, add_sampling_arguments

    parser = commands.add_parser(
        "chat", formatter_class=_formatter, help="chat with an instruction-tuned checkpoint (streaming)",
        description="Multi-turn chat with a `luna finetune` result: the conversation is rendered with the "
                    "chat template stored with its tokenizer (lunalm's default template if none), answers "
                    "stream as they are generated, the oldest turns are dropped when the context is full. "
                    f"Inside the chat: {COMMANDS}.",
        epilog=textwrap.dedent("""\
            examples:
              luna chat runs/NAME/checkpoints/final
              luna chat CKPT --system "Kısa cevap ver." --temperature 0.7
              luna chat CKPT --temperature 0 --max-new-tokens 64          greedy"""))
    parser.add_argument("checkpoint", metavar="CKPT", help="a fine-tuned checkpoint folder (final/, best/, step-N/)")
    parser.add_argument("--system", metavar="TEXT", help="system message put before the conversation (default: none)")
    add_sampling_arguments(parser, max_new_tokens=256, temperature=0.7)
    parser.set_defaults(run=run_chat)


def run_chat(args) -> int:
    from lunalm.cli.generate import _load
    from lunalm.finetune.chat import chat_template_of
    from lunalm.finetune.instructions import turn_end_ids
    from lunalm.generate import SamplingConfig

    cfg = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                         top_p=args.top_p, repetition_penalty=args.repetition_penalty, seed=args.seed)
    model, tokenizer, _meta, hw = _load(args.checkpoint, args.device, args.trust_unverified)
    chat = chat_template_of(tokenizer)
    if chat.is_default:
        _note(f"warning: {args.checkpoint} stores no chat template (tokenizer_config.json, chat_template.jinja); using lunalm's "
              "default template ('### role:' headers), which may not match how the model was trained")
    stops = turn_end_ids(chat.template, tokenizer)
    interactive = sys.stdin.isatty()
    if interactive:
        _note(f"chatting with {args.checkpoint}; {COMMANDS}")
    history: list[dict] = []
    try:
        while (line := _read(interactive)) is not None:
            if line.strip().startswith("/"):
                if not _command(line.strip(), history):
                    break
            elif line.strip():
                history = _answer(line, history, args, model, tokenizer, chat.template, cfg, hw.device, stops)
    except KeyboardInterrupt:
        print()
    return 0


def _read(interactive: bool) -> str | None:
    try:
        return input("> " if interactive else "")
    except EOFError:
        return None


def _command(command: str, history: list[dict]) -> bool:
    """Apply a /command; False means leave."""
    name = command.split()[0].lower()
    if name in ("/exit", "/quit"):
        return False
    if name == "/reset":
        history.clear()
        _note("(conversation reset)")
    else:
        _note(f"unknown command {name}: {COMMANDS}")
    return True


def _answer(line, history, args, model, tokenizer, template, cfg, device, stops) -> list[dict]:
    """Stream the answer to ``line``; the history afterwards (trimmed to fit, both new messages added)."""
    from lunalm.finetune.chat import fit_history, prompt_budget, render_prompt
    from lunalm.finetune.instructions import bos_of
    from lunalm.generate import generate

    history = history + [{"role": "user", "content": line}]
    budget = prompt_budget(model.config.context_length, cfg.max_new_tokens)
    fitted = fit_history(history, args.system, lambda messages: render_prompt(messages, template, tokenizer.eot_token,
                                                                              bos_of(tokenizer)),
                         lambda text: len(tokenizer.encode(text)), budget)
    if fitted.dropped_turns:
        _note(f"(dropped the {fitted.dropped_turns} oldest turn(s): the conversation no longer fits the "
              f"model's context of {model.config.context_length} tokens)")
    if not fitted.fits:
        _note(f"(this message alone is {fitted.n_tokens} tokens, more than the {budget} the context leaves; "
              "the model sees only its end)")

    def stream(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    reply = generate(model, tokenizer, fitted.prompt, cfg, on_text=stream, device=device, stop_ids=stops)
    print(flush=True)
    return fitted.history + [{"role": "assistant", "content": reply}]


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
