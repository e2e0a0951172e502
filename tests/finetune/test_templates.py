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


PHI3 = ("{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\\n' + "
        "message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + "
        "'<|end|>\\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + "
        "'<|end|>\\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}"
        "{{ eos_token }}{% endif %}")
NEMO = ("{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}{%- set "
        "loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}{%- endif %}{{- bos_token }}"
        "{%- for message in loop_messages %}{%- if message['role'] == 'user' %}{%- if loop.last and system_message is "
        "defined %}{{- '[INST]' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}{%- else %}{{- '[INST]' "
        "+ message['content'] + '[/INST]' }}{%- endif %}{%- elif message['role'] == 'assistant' %}{{- "
        "message['content'] + eos_token }}{%- endif %}{%- endfor %}")
LLAMA3 = ("{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + "
          "m['content'] + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
TWO_TURNS = [{"role": "user", "content": "Selam"}, {"role": "assistant", "content": "Merhaba."},
             {"role": "user", "content": "Nasılsın?"}, {"role": "assistant", "content": "İyiyim."}]


def _answers(tokenizer, template, messages, counts=None) -> list[str]:
    from lunalm.finetune.instructions import tokenize_example

    ids, targets = tokenize_example(messages, compile_template(template), tokenizer, counts)
    runs, current = [], []
    for token, target in zip(ids, targets):
        if target:
            current.append(token)
        elif current:
            runs, current = runs + [current], []
    return [tokenizer.decode(run) for run in runs + ([current] if current else [])]


def test_phi3_closes_only_the_conversation_with_end_of_text_and_nemo_trains_its_last_answer(tmp_path: Path):
    tokenizer = _tokenizer(tmp_path, ["<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "[INST]", "[/INST]"])
    eos = tokenizer.eot_token
    assert _answers(tokenizer, PHI3, TWO_TURNS) == ["Merhaba.<|end|>\n", f"İyiyim.<|end|>\n{eos}"]
    counts = {}
    with_system = [{"role": "system", "content": "Kısa cevap ver."}, *TWO_TURNS]
    assert _answers(tokenizer, NEMO, with_system, counts) == [f"İyiyim.{eos}"] and counts == {"last_only": 1}
    assert _answers(tokenizer, NEMO, TWO_TURNS) == [f"Merhaba.{eos}", f"İyiyim.{eos}"]  # no system: every answer


def test_a_bases_bos_is_written_where_its_template_asks_and_exported_as_its_bos(tmp_path: Path):
    from lunalm.export.hf import generation_config, special_tokens

    tokenizer = _tokenizer(tmp_path, ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                                      "<start_of_turn>", "<end_of_turn>"])
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**config, "bos_token": "<|begin_of_text|>"}))
    tokenizer = Tokenizer.load(tmp_path)
    assert tokenizer.bos_token == "<|begin_of_text|>"
    tokenizer.chat_template = LLAMA3
    prompt = render_prompt(TWO_TURNS[:1], compile_template(LLAMA3), tokenizer.eot_token, "<|begin_of_text|>")
    assert prompt.startswith("<|begin_of_text|><|start_header_id|>user")
    from lunalm.finetune.instructions import tokenize_example

    ids, _ = tokenize_example(TWO_TURNS, compile_template(LLAMA3), tokenizer)
    assert ids[0] == tokenizer.inner.token_to_id("<|begin_of_text|>")
    assert special_tokens(tokenizer)["bos_token"] == "<|begin_of_text|>"
    tokenizer.save(tmp_path / "saved")
    assert Tokenizer.load(tmp_path / "saved").bos_token == "<|begin_of_text|>"  # kept through a checkpoint
    assert generation_config(tokenizer)["eos_token_id"] == [tokenizer.eot_id, tokenizer.inner.token_to_id("<|eot_id|>")]
    tokenizer.chat_template = GEMMA
    assert generation_config(tokenizer)["eos_token_id"] == [tokenizer.eot_id,
                                                            tokenizer.inner.token_to_id("<end_of_turn>")]
