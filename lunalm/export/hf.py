"""``luna export CKPT --to hf OUT``: a folder any ``transformers`` user loads as it stands.

    config.json              LlamaConfig (lunalm.model.to_hf_config) with bos/eos/pad ids and the dtype
    model.safetensors        LlamaForCausalLM parameter names; lm_head.weight absent when tied
    tokenizer.json           the lunalm tokenizer (byte-level BPE or char-level), unchanged
    tokenizer_config.json    PreTrainedTokenizerFast, special tokens, model_max_length = context length
    special_tokens_map.json
    generation_config.json   eos/pad ids and `luna generate`'s sampling defaults
    README.md                a short model card: how to load it, what it was trained on

``AutoModelForCausalLM.from_pretrained(OUT)`` gives the same logits as lunalm and ``AutoTokenizer`` the
same ids (tests/test_export.py checks both). A ``luna finetune`` checkpoint of a Hugging Face base (GPT-2,
Llama, Phi...) keeps its own architecture: its model is written with ``save_pretrained`` (LoRA adapters
already merged), with the same tokenizer, generation and card files. lunalm models never saw a beginning-of-sequence token: a
document starts right after ``<|endoftext|>``, so that token is also declared as ``bos_token`` (as GPT-2
does) and nothing is added to the encoded text.
"""

from __future__ import annotations

import json
from pathlib import Path

from lunalm.export.common import (DTYPES, SAMPLING, ExportResult, Source, check_dtype, check_output,
                                  size_on_disk, write_directory)


def export_hf(source: Source, out: str | Path, *, dtype: str = "f32", force: bool = False) -> ExportResult:
    """Write the Hugging Face folder ``out`` atomically (see the module docstring for its files)."""
    out = Path(out)
    check_hf_request(source.directory, out, dtype=dtype, force=force)
    write_directory(out, lambda folder: write_hf_files(source, folder, dtype))
    return ExportResult(path=out, format="hf", dtype=dtype, n_parameters=source.n_parameters,
                        size_bytes=size_on_disk(out), example_prompt=source.example_prompt)


def check_hf_request(checkpoint: Path, out: Path, *, dtype: str, force: bool) -> None:
    """Refuse a bad --dtype or OUT before anything is loaded or written."""
    check_dtype(dtype, tuple(DTYPES), "Hugging Face")
    check_output(out, force=force, kind="dir", source=checkpoint)


def write_hf_files(source: Source, folder: Path, dtype: str) -> None:
    """Every file of the export into the (new, empty) ``folder``."""
    import copy

    import torch

    from lunalm.model import save_pretrained

    tokenizer = source.tokenizer
    model = source.model
    if dtype != "f32":  # a cast copy: the caller's float32 model stays as it was
        model = copy.deepcopy(model).to(getattr(torch, DTYPES[dtype]))
    if source.hf_model_type is None:
        save_pretrained(model, folder, bos_token_id=tokenizer.eot_id, eos_token_id=tokenizer.eot_id,
                        pad_token_id=tokenizer.pad_id)
    else:  # a fine-tuned Hugging Face model: its own config and parameter names
        from lunalm.finetune.adapter import NO_SHARDS

        model.inner.save_pretrained(folder, safe_serialization=True, max_shard_size=NO_SHARDS)
        (folder / "generation_config.json").unlink(missing_ok=True)  # ours below replaces the base's
    _add_dtype_key(folder / "config.json")
    tokenizer.save(folder)
    context_length = source.model.config.context_length
    special = special_tokens(tokenizer)
    _write_json(folder / "special_tokens_map.json", special)
    config = tokenizer_config(special, context_length)
    if tokenizer.chat_template is not None:  # instruction fine-tunes: apply_chat_template works as trained
        config["chat_template"] = tokenizer.chat_template
    _write_json(folder / "tokenizer_config.json", config)
    _write_json(folder / "generation_config.json", generation_config(tokenizer))
    (folder / "README.md").write_text(model_card(source, dtype), encoding="utf-8")


def special_tokens(tokenizer) -> dict[str, str]:
    """bos = eos = end-of-text (documents were separated by it in training; a fine-tuned base keeps its own
    bos, which its chat template writes), pad, and unk if any."""
    special = {"bos_token": tokenizer.bos_token or tokenizer.eot_token, "eos_token": tokenizer.eot_token,
               "pad_token": tokenizer.pad_token}
    from lunalm.tokenizer import UNK_TOKEN

    if tokenizer.inner.token_to_id(UNK_TOKEN) is not None:
        special["unk_token"] = UNK_TOKEN
    return special


def tokenizer_config(special: dict[str, str], context_length: int) -> dict:
    """``tokenizer_config.json``: no BOS/EOS added on encode, no space clean-up on decode (so decode of
    encode gives the text back exactly), and inputs cut at the model's context length."""
    return {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": context_length,
            "add_bos_token": False, "add_eos_token": False, "clean_up_tokenization_spaces": False,
            **special}


def generation_config(tokenizer) -> dict:
    """``generation_config.json``: sampling as `luna generate` samples, stopping at end-of-text (and at the
    chat template's end of turn, Gemma's <end_of_turn>, for an instruction fine-tune).

    No ``max_length``: with it every ``generate(max_new_tokens=...)`` call warns that both are set; the
    context length is ``model_max_length`` in tokenizer_config.json and the model config's positions."""
    bos = tokenizer.inner.token_to_id(tokenizer.bos_token) if tokenizer.bos_token else tokenizer.eot_id
    eos = tokenizer.eot_id
    if tokenizer.chat_template:  # an instruction fine-tune stops at its template's end of turn too
        from lunalm.finetune.instructions import compile_template, turn_end_ids

        ends = turn_end_ids(compile_template(tokenizer.chat_template), tokenizer)
        eos = list(ends) if len(ends) > 1 else eos
    return {"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": tokenizer.pad_id, "do_sample": True,
            **SAMPLING}


def model_card(source: Source, dtype: str) -> str:
    return (f"# {source.name}\n\n{_model_sentence(source, dtype)}\n\n"
            "```python\n"
            "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
            'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")\n'
            'model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")\n'
            f"ids = tokenizer({source.example_prompt!r}, return_tensors=\"pt\").input_ids\n"
            "print(tokenizer.decode(model.generate(ids, max_new_tokens=50)[0]))\n"
            "```\n\n"
            f"{_use_sentence(source)} Generation stops at `{source.tokenizer.eot_token}`.\n")


def _model_sentence(source: Source, dtype: str) -> str:
    cfg = source.model.config
    if source.hf_model_type is not None:
        tuning = source.meta.get("config", {}).get("finetune") or {}
        how = "LoRA (adapters merged)" if tuning.get("lora") else "full"
        return (f"A {source.hf_model_type} model fine-tuned with lunalm ({how} fine-tune of "
                f"`{tuning.get('base', '?')}`): {source.n_parameters:,} parameters, context "
                f"{cfg.context_length} tokens, vocabulary {cfg.vocab_size}, weights in {DTYPES[dtype]}.")
    kind = {"bpe": "byte-level BPE (Turkish-aware pre-tokenizer)", "char": "character-level"}.get(
        source.tokenizer.kind, "pretrained")
    return (f"A Llama-architecture language model trained with lunalm: "
            f"{source.n_parameters:,} parameters, {cfg.n_layer} layers, width {cfg.d_model}, "
            f"{cfg.n_head} heads ({cfg.n_kv_head} key/value), context {cfg.context_length} tokens, "
            f"vocabulary {cfg.vocab_size} ({kind} tokenizer), weights in {DTYPES[dtype]}.")


def _use_sentence(source: Source) -> str:
    if source.tokenizer.chat_template is not None:
        return "It was tuned on instructions: build prompts with `tokenizer.apply_chat_template`."
    if source.hf_model_type is not None:
        return "It continues text (fine-tuned on raw text, not on instructions)."
    return "It is a base model: it continues text and was never tuned to follow instructions."


def _add_dtype_key(path: Path) -> None:
    """transformers >= 5 reads ``dtype``, older versions ``torch_dtype``: write both."""
    config = json.loads(path.read_text(encoding="utf-8"))
    config["dtype"] = config["torch_dtype"] = config.get("dtype") or config["torch_dtype"]
    _write_json(path, config)


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
