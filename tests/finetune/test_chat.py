"""``luna chat``: history rendering and trimming (exact strings), and the CLI driven through stdin.

The checkpoint is a tiny LoRA chat fine-tune (random 2-layer GPT-2 base); its answers are noise, but
greedy decoding makes them exact: the CLI must print what ``lunalm.generate`` gives for the same
rendered prompt, and its second turn must see the first.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_luna
from tests.finetune.fthelp import CHAT, tiny_base, write_jsonl
from tests.train.runhelp import luna_env

GREEDY = ["--temperature", "0", "--max-new-tokens", "8", "--device", "cpu"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A LoRA chat fine-tune (10 steps, high lr: answers the model learned) whose tokenizer_config.json stores the chat template."""
    from lunalm.cli import build_parser
    from lunalm.cli.finetune import build_finetune_config
    from lunalm.train.loop import SilentUI
    from lunalm.train.session import start

    root = tmp_path_factory.mktemp("chat")
    base = tiny_base(root / "base", "gpt2")
    data = write_jsonl(root / "chat.jsonl", CHAT)
    args = build_parser().parse_args(["finetune", "--base", str(base), str(data), "--lora", "--max-steps", "10", "--lr", "1e-2",
                                      "--context", "96", "--batch-size", "4", "--device", "cpu",
                                      "--sample-every", "0", "--quiet", "--name", "chat",
                                      "--runs-dir", str(root / "runs")])
    run, status = start(build_finetune_config(args), SilentUI(), progress=False)
    assert status == "completed"
    final = run.run_dir / "checkpoints" / "final"
    assert "chat_template" in json.loads((final / "tokenizer_config.json").read_text(encoding="utf-8"))
    return final


def _chat(checkpoint: Path, lines: list[str], *flags: str) -> subprocess.CompletedProcess:
    return run_luna("chat", str(checkpoint), *GREEDY, *flags, input="".join(line + "\n" for line in lines),
                    env=luna_env(), cwd=checkpoint.parent)


def _greedy(checkpoint: Path, messages: list[dict]) -> tuple[str, str]:
    """(rendered prompt, lunalm.generate's greedy answer) for ``messages`` on ``checkpoint``."""
    from lunalm.finetune.chat import chat_template_of, render_prompt
    from lunalm.generate import SamplingConfig, generate
    from lunalm.train.checkpoint import load_checkpoint

    model, tokenizer, _meta = load_checkpoint(checkpoint)
    prompt = render_prompt(messages, chat_template_of(tokenizer).template, tokenizer.eot_token)
    cfg = SamplingConfig(temperature=0, max_new_tokens=8, repetition_penalty=1.1)
    return prompt, generate(model, tokenizer, prompt, cfg)


# --- the pure parts ------------------------------------------------------------------------------
def test_prompt_of_turn_two_contains_turn_one():
    from lunalm.finetune.chat import render_prompt, with_system
    from lunalm.finetune.instructions import DEFAULT_TEMPLATE, compile_template

    template = compile_template(DEFAULT_TEMPLATE)
    history = [{"role": "user", "content": "Merhaba"}, {"role": "assistant", "content": "Selam."},
               {"role": "user", "content": "Nasılsın?"}]
    prompt = render_prompt(with_system("Kısa cevap ver.", history), template, "<eot>")
    assert prompt == ("### system:\nKısa cevap ver.<eot>\n### user:\nMerhaba<eot>\n### assistant:\nSelam.<eot>\n"
                      "### user:\nNasılsın?<eot>\n### assistant:\n")


def test_trimming_drops_the_oldest_turn_first():
    from lunalm.finetune.chat import fit_history

    history = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "bb"},
               {"role": "user", "content": "ccc"}, {"role": "assistant", "content": "dddd"},
               {"role": "user", "content": "eeeee"}]

    def render(messages):
        return "|".join(m["content"] for m in messages)

    fitted = fit_history(history, "S", render, len, budget=len("S|ccc|dddd|eeeee"))
    assert (fitted.history, fitted.dropped_turns, fitted.prompt, fitted.fits) == \
        (history[2:], 1, "S|ccc|dddd|eeeee", True)
    whole = fit_history(history, None, render, len, budget=100)
    assert (whole.history, whole.dropped_turns, whole.prompt) == (history, 0, "a|bb|ccc|dddd|eeeee")
    last = fit_history(history, None, render, len, budget=5)
    assert (last.history, last.dropped_turns, last.fits) == (history[4:], 2, True)
    too_long = fit_history(history, None, render, len, budget=4)
    assert (too_long.history, too_long.dropped_turns, too_long.fits) == (history[4:], 2, False)


@pytest.mark.slow  # the chat fixture trains a LoRA fine-tune (29 s), each chat 13-16 s
def test_a_tokenizer_without_template_gets_the_default(checkpoint):
    from lunalm.finetune.chat import chat_template_of
    from lunalm.finetune.instructions import DEFAULT_TEMPLATE
    from lunalm.tokenizer import Tokenizer

    tokenizer = Tokenizer.load(checkpoint)
    assert tokenizer.chat_template and not chat_template_of(tokenizer).is_default
    tokenizer.chat_template = None
    chosen = chat_template_of(tokenizer)
    assert chosen.is_default
    assert chosen.template.render(messages=[], add_generation_prompt=True) == "### assistant:\n"


# --- the CLI -------------------------------------------------------------------------------------
@pytest.mark.slow  # the chat fixture trains a LoRA fine-tune (29 s), each chat 13-16 s
def test_chat_answers_resets_and_matches_generate(checkpoint):
    done = _chat(checkpoint, ["Merhaba", "/reset", "Nasılsın?", "/exit", "never read"])
    assert done.returncode == 0, done.stderr
    _, first = _greedy(checkpoint, [{"role": "user", "content": "Merhaba"}])
    _, after_reset = _greedy(checkpoint, [{"role": "user", "content": "Nasılsın?"}])
    assert first.strip() and after_reset.strip()
    assert done.stdout == f"{first}\n{after_reset}\n"
    assert "reset" in done.stderr and "warning" not in done.stderr


@pytest.mark.slow  # the chat fixture trains a LoRA fine-tune (29 s), each chat 13-16 s
def test_second_turn_sees_the_first_and_eof_exits_cleanly(checkpoint):
    done = _chat(checkpoint, ["Merhaba", "Nasılsın?"], "--system", "Kısa cevap ver.")
    assert done.returncode == 0, done.stderr
    system = {"role": "system", "content": "Kısa cevap ver."}
    _, first = _greedy(checkpoint, [system, {"role": "user", "content": "Merhaba"}])
    prompt, second = _greedy(checkpoint, [system, {"role": "user", "content": "Merhaba"},
                                          {"role": "assistant", "content": first},
                                          {"role": "user", "content": "Nasılsın?"}])
    from lunalm.tokenizer import Tokenizer

    eot = Tokenizer.load(checkpoint).eot_token
    assert prompt.endswith(f"### user:\nMerhaba{eot}\n### assistant:\n{first}{eot}\n"
                           f"### user:\nNasılsın?{eot}\n### assistant:\n")
    assert done.stdout == f"{first}\n{second}\n"


@pytest.mark.slow  # the chat fixture trains a LoRA fine-tune (29 s), each chat 13-16 s
def test_long_conversation_drops_oldest_turns_and_says_so(checkpoint):
    long_line = " ".join(["Merhaba nasılsın bugün hava çok güzel"] * 3)
    done = _chat(checkpoint, [long_line] * 4, "--max-new-tokens", "40")
    assert done.returncode == 0, done.stderr
    assert "oldest turn(s)" in done.stderr
    assert len(done.stdout.splitlines()) >= 4


def test_missing_checkpoint_gives_generates_error(tmp_path):
    done = run_luna("chat", str(tmp_path / "nope"), input="", env=luna_env(), cwd=tmp_path, timeout=120)
    reference = run_luna("generate", str(tmp_path / "nope"), env=luna_env(), cwd=tmp_path, timeout=120)
    assert done.returncode == reference.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [line for line in reference.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "does not exist" in errors[0]
