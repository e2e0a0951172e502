"""Real chat templates as bases ship them: saved in ``chat_template.jinja`` (transformers 5), ending a turn with
a token that is not end-of-text (ChatML's ``<|im_end|>``, Gemma's ``<end_of_turn>``), and refusing a
conversation with ``raise_exception`` (Gemma has no system role)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lunalm.errors import ConfigError, DataError
from lunalm.finetune.chat import render_prompt
from lunalm.finetune.instructions import build_instruction_data, compile_template, turn_end_ids
from lunalm.tokenizer import Tokenizer
from tests.finetune.fthelp import CHAT, tiny_tokenizer, write_jsonl

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
          "{% endif %}")
GEMMA = ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
         "{% endif %}{% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' else "
         "message['role'] %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
         "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}")


def _tokenizer(folder: Path, specials: list[str]) -> Tokenizer:
    tokenizer = tiny_tokenizer(folder)
    tokenizer.inner.add_special_tokens(specials)
    tokenizer.save(folder)
    return Tokenizer.load(folder)


def test_a_template_saved_in_chat_template_jinja_is_the_bases_template(tmp_path: Path):
    tiny_tokenizer(tmp_path)
    (tmp_path / "chat_template.jinja").write_text(CHATML, encoding="utf-8")
    assert Tokenizer.load(tmp_path).chat_template == CHATML
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config["chat_template"] = [{"name": "tool_use", "template": "x"}, {"name": "default", "template": GEMMA}]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    assert Tokenizer.load(tmp_path).chat_template == GEMMA  # the named list form: its default


@pytest.mark.parametrize("template, token", [(CHATML, "<|im_end|>"), (GEMMA, "<end_of_turn>")])
def test_a_turn_ends_at_the_templates_own_end_of_turn_token(tmp_path: Path, template: str, token: str):
    tokenizer = _tokenizer(tmp_path, ["<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>"])
    stops = turn_end_ids(compile_template(template), tokenizer)
    assert stops == (tokenizer.eot_id, tokenizer.inner.token_to_id(token))
    from lunalm.finetune.instructions import DEFAULT_TEMPLATE  # ours ends turns with end-of-text itself
    assert turn_end_ids(compile_template(DEFAULT_TEMPLATE), tokenizer) == (tokenizer.eot_id,)


def test_generation_stops_at_any_stop_id(monkeypatch):
    import lunalm.generate as generate
    from tests.test_generate import random_model

    chosen = iter(range(4, 40))
    monkeypatch.setattr(generate, "next_token", lambda *args: next(chosen))  # 4, 5, 6, 7, ...
    cfg = generate.SamplingConfig(max_new_tokens=20, temperature=0)
    assert generate.generate_ids(random_model(50), [3], cfg, stop_id={9, 7}) == [4, 5, 6]
    chosen = iter(range(4, 40))
    assert generate.generate_ids(random_model(50), [3], cfg, stop_id=8) == [4, 5, 6, 7]


def test_a_conversation_the_template_refuses_is_one_clear_error(tmp_path: Path):
    tokenizer = _tokenizer(tmp_path, ["<start_of_turn>", "<end_of_turn>"])
    tokenizer.chat_template = GEMMA
    data = write_jsonl(tmp_path / "chat.jsonl", CHAT)  # each conversation opens with a system message
    with pytest.raises(DataError, match=r"chat\.jsonl: example 1: the chat template refuses this "
                                        r"conversation: System role not supported"):
        build_instruction_data([data], "chat", tokenizer, 64, 0.1, 0)
    with pytest.raises(ConfigError, match="System role not supported"):
        render_prompt([{"role": "system", "content": "Kısa"}, {"role": "user", "content": "Selam"}],
                      compile_template(GEMMA), tokenizer.eot_token)
    no_system = [{"messages": record["messages"][1:]} for record in CHAT]
    built = build_instruction_data([write_jsonl(tmp_path / "ok.jsonl", no_system)], "chat", tokenizer, 64, 0.25, 0)
    assert len(built.train[0]) + len(built.val[0]) == 1 and built.duplicates == len(no_system) - 1  # 8 copies


@pytest.mark.parametrize("template, turn_end, system", [(CHATML, "<|im_end|>", True), (GEMMA, "<end_of_turn>", False)])
def test_an_instruction_fine_tunes_modelfile_renders_its_turns_and_stops_at_their_end(tmp_path: Path, template,
                                                                                    turn_end, system):
    from lunalm.export.gguf import modelfile_text

    tokenizer = _tokenizer(tmp_path, ["<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>"])
    assert 'TEMPLATE """{{ .Prompt }}"""' in modelfile_text("m.gguf", tokenizer, 128)  # no template: completion
    tokenizer.chat_template = template
    text = modelfile_text("m.gguf", tokenizer, 128)
    assert f'PARAMETER stop "{tokenizer.eot_token}"\nPARAMETER stop "{turn_end}"' in text
    template_text = text.split('TEMPLATE """')[1].split('"""')[0]
    assert ('eq .Role "system"' in template_text) == system
    # Ollama's rendering of one user turn, done by hand, is the Jinja template's prompt
    user = template_text.split('eq .Role "user" }}')[1].split("{{ else")[0]
    generation = template_text.rsplit("{{ end }}", 1)[1]
    jinja = compile_template(template).render(messages=[{"role": "user", "content": "Selam"}],
                                              add_generation_prompt=True, eos_token=tokenizer.eot_token, bos_token="")
    assert user.replace("{{ .Content }}", "Selam") + generation == jinja


QWEN = ("{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
        "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
        "<|im_end|>\\n' }}{%- endif %}{%- for message in messages %}{%- if (message.role == 'user') or "
        "(message.role == 'system' and not loop.first) or (message.role == 'assistant') %}{{- '<|im_start|>' + "
        "message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")


@pytest.mark.parametrize("template", [CHATML, GEMMA, QWEN], ids=["chatml", "gemma", "qwen2.5"])
def test_the_turns_ollama_is_given_render_conversations_as_the_template_does(template):
    from lunalm.finetune.chat import role_wrappers
    from lunalm.finetune.instructions import DEFAULT_TEMPLATE

    for source in (template, DEFAULT_TEMPLATE):
        compiled = compile_template(source)
        wrappers = role_wrappers(compiled, "<eos>")
        conversations = [[{"role": "user", "content": "Selam"}, {"role": "assistant", "content": "Merhaba."},
                          {"role": "user", "content": "Nasılsın?"}]]
        if wrappers.system:
            conversations.append([{"role": "system", "content": "Kısa cevap ver."}, *conversations[0]])
        for messages in conversations:  # what the Go template writes, done by hand
            written = (wrappers.preamble if messages[0]["role"] != "system" else "") + "".join(
                wrappers.prefix[m["role"]] + m["content"] + wrappers.suffix[m["role"]] for m in messages)
            assert written + wrappers.generation == compiled.render(
                messages=messages, add_generation_prompt=True, eos_token="<eos>", bos_token="")
    assert role_wrappers(compile_template(QWEN), "<eos>").preamble.startswith("<|im_start|>system\nYou are Qwen")
