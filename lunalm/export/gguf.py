"""``luna export CKPT --to gguf OUT.gguf``: one file for llama.cpp and Ollama, plus an Ollama Modelfile.

The model is written as llama.cpp's ``llama`` architecture (lunalm *is* a Llama), tensors in f32 or f16
(with ``--dtype f16`` the 1-D norm weights stay f32, as llama.cpp's own converter does). Tensor names:

    token_embd  blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up,
    ffn_down}  output_norm  output (only when the output head is not tied to token_embd)

**RoPE layout.** lunalm (like Hugging Face) rotates lane i of a head with lane i + D/2 ("rotate half");
llama.cpp's ``llama`` rotates adjacent lanes (2i, 2i+1). Both use frequency theta^(-2i/D) for pair i, so
reordering the *output rows* of q_proj / k_proj within every head - row i -> 2i, row i + D/2 -> 2i+1 -
makes llama.cpp compute exactly the same attention scores (:func:`interleave_rope_rows`; the scores are
dot products over all lanes, so the lane order inside q and k does not matter once it is the same).

**Tokenizer.** lunalm's byte-level BPE is written as llama.cpp's ``gpt2`` tokenizer model (the GPT-2
byte-to-unicode vocabulary, merges "a b", bos = eos = ``<|endoftext|>``, pad, no BOS added). llama.cpp
cannot run a custom pre-tokenizer regex: it knows a fixed list of named ones. We declare ``llama-bpe``
(Llama 3's regex), the closest: lunalm's Turkish-aware regex *is* Llama 3's with a few changes, so the
two split prose identically except that

* llama.cpp splits off suffixes that begin like an English contraction ('s 't 're 've 'm 'll 'd):
  ``Ankara'da`` -> ``Ankara`` ``'d`` ``a`` where lunalm gives ``Ankara`` ``'`` ``da``, and it keeps the
  apostrophe on other suffixes (``'nin``, which lunalm's vocabulary spells ``'`` ``nin`` all the same);
* llama.cpp lets any one non-letter (not only a space) prefix a word: ``(Ankara`` is one piece;
* llama.cpp does not NFC-normalise (give it NFC text) and, for ``llama-bpe``, looks a whole piece up in
  the vocabulary before applying merges.

So llama.cpp may encode a prompt into slightly different (still valid, lossless) tokens than lunalm;
given the same token ids, the model computes the same logits. Measured by ``bench/bench_apostrophe.py
--gguf`` (llama.cpp's regexes emulated with ``tokenizers`` on an 8k BPE of 90 % of the built-in speeches):
extra tokens against lunalm's split on the held-out speeches / on apostrophe-dense news paragraphs:
``llama-bpe`` 0.19 % / 0.89 %, ``gpt-2`` 1.21 % / 0.65 %, ``tekken`` 0.34 % / 3.66 %, ``qwen2``
0.53 % / 4.55 % (the last three also split digits differently). ``llama-bpe`` is closest on prose.
A tokenizer read from a GPT-2 style ``tokenizer.json`` (ByteLevel with its built-in
regex) is declared ``gpt-2``, which matches it.

Char-level tokenizers are refused: llama.cpp has no WordLevel model, and writing the characters as
a merge-less ``gpt2`` vocabulary would break every non-ASCII character (ç ğ ı ö ş ü are two bytes,
which llama.cpp would look up as byte tokens the vocabulary does not have). Export those with
``--to hf``, or train with the BPE tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from lunalm.export.common import (SAMPLING, ExportError, ExportResult, Source, check_dtype, check_output,
                                  size_on_disk, write_file)

if TYPE_CHECKING:
    import numpy as np

LLAMA_BPE_PRE = "llama-bpe"  # the llama.cpp pre-tokenizer declared for lunalm's BPE (module docstring)
GPT2_PRE = "gpt-2"  # for tokenizers that use GPT-2's own ByteLevel regex


def export_gguf(source: Source, out: str | Path, *, dtype: str = "f32", force: bool = False) -> ExportResult:
    """Write ``out`` (a .gguf file) and an Ollama ``Modelfile`` beside it, each atomically."""
    from lunalm.export.gguf_hf import as_lunalm_source, check_gguf_architecture, write_gpt2_gguf

    out = Path(out)
    check_gguf_request(source.directory, out, dtype=dtype, force=force)
    check_gguf_architecture(source)
    source = as_lunalm_source(source)  # a fine-tuned Llama: lunalm's own model, same weights
    vocab = gguf_vocab(source.tokenizer, source.model.config.vocab_size)  # refuses char tokenizers
    vocab["chat_template"] = source.tokenizer.chat_template
    if source.tokenizer.bos_token:
        vocab["bos_id"] = source.tokenizer.inner.token_to_id(source.tokenizer.bos_token)
    modelfile = modelfile_path(out)
    writer = write_gpt2_gguf if source.hf_model_type == "gpt2" else write_gguf
    write_file(out, lambda path: writer(source, path, dtype, vocab))
    text = modelfile_text(out.name, source.tokenizer, source.model.config.context_length)
    write_file(modelfile, lambda path: path.write_text(text, encoding="utf-8"))
    return ExportResult(path=out, format="gguf", dtype=dtype, n_parameters=source.n_parameters,
                        size_bytes=size_on_disk(out), notes=vocab_notes(vocab["pre"]),
                        modelfile=modelfile, modelfile_text=text, example_prompt=source.example_prompt)


def check_gguf_request(checkpoint: Path, out: Path, *, dtype: str, force: bool) -> None:
    """Refuse a bad --dtype, file name or existing output before anything is loaded or written."""
    check_dtype(dtype, ("f32", "f16"), "GGUF")
    if out.suffix != ".gguf":
        example = out.with_name(out.name + ".gguf") if out.name else Path("model.gguf")
        raise ExportError(f"{out}: a GGUF export is one file whose name ends in .gguf, e.g. {example}.")
    check_output(out, force=force, kind="file", source=checkpoint)
    check_output(modelfile_path(out), force=force, kind="file", source=checkpoint)


def modelfile_path(out: Path) -> Path:
    """The Ollama Modelfile beside ``out``, named after it (two exports in one folder never collide)."""
    return out.with_suffix(".Modelfile")


def write_gguf(source: Source, path: Path, dtype: str, vocab: dict) -> None:
    """The GGUF file itself: header, metadata, tokenizer, then the tensors."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    write_model_metadata(writer, source, dtype)
    write_tokenizer_metadata(writer, vocab)
    write_tensors(writer, gguf_tensors(source.model, dtype))


def write_tensors(writer, tensors: Iterator[tuple[str, np.ndarray]]) -> None:
    """Add ``tensors`` (llama.cpp name, array) and write the whole file: header, metadata, tensors."""
    for name, array in tensors:
        writer.add_tensor(name, array)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()


# --- tensors ------------------------------------------------------------------------------------
# lunalm / Hugging Face parameter name -> llama.cpp tensor name; _BLOCK_NAMES inside model.layers.N / blk.N
_TOP_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
              "lm_head.weight": "output.weight"}
_BLOCK_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_name(name: str) -> str:
    """The llama.cpp tensor name of a lunalm parameter name."""
    if name in _TOP_NAMES:
        return _TOP_NAMES[name]
    parts = name.split(".", 3)  # "model", "layers", N, the name inside the block
    if len(parts) == 4 and parts[:2] == ["model", "layers"] and parts[3] in _BLOCK_NAMES:
        return f"blk.{parts[2]}.{_BLOCK_NAMES[parts[3]]}"
    raise ValueError(f"no llama.cpp name for parameter {name!r}")


def gguf_tensors(model, dtype: str) -> Iterator[tuple[str, np.ndarray]]:
    """(llama.cpp name, numpy array) for every tensor, q/k rows interleaved for llama.cpp's RoPE.

    Arrays keep PyTorch's (out_features, in_features) shape; GGUF stores dimensions innermost first,
    which is what llama.cpp expects. ``output`` is left out when tied (llama.cpp then reuses token_embd).
    """
    import numpy as np

    cfg = model.config
    state = model.state_dict()
    if cfg.tie_embeddings:
        state.pop("lm_head.weight")
    for name, tensor in state.items():
        tensor = tensor.detach().float().cpu()
        if name.endswith("self_attn.q_proj.weight"):
            tensor = interleave_rope_rows(tensor, cfg.n_head)
        elif name.endswith("self_attn.k_proj.weight"):
            tensor = interleave_rope_rows(tensor, cfg.n_kv_head)
        array = tensor.contiguous().numpy()
        if dtype == "f16" and array.ndim > 1:  # norms stay f32, as llama.cpp's converter keeps them
            array = array.astype(np.float16)
        yield gguf_name(name), array


def interleave_rope_rows(weight, n_heads: int):
    """Reorder the output rows of a q/k projection from rotate-half to interleaved RoPE pairs.

    weight (n_heads*D, C). Within each head, row i (first half) -> 2i and row i + D/2 -> 2i + 1, so the
    pair llama.cpp rotates together, lanes (2i, 2i+1), is the pair lunalm rotates, lanes (i, i + D/2).
    """
    rows, width = weight.shape
    half = rows // n_heads // 2
    return weight.reshape(n_heads, 2, half, width).transpose(1, 2).reshape(rows, width)


def uninterleave_rope_rows(weight, n_heads: int):
    """The inverse of :func:`interleave_rope_rows`: lanes (2i, 2i+1) back to (i, i + D/2)."""
    rows, width = weight.shape
    half = rows // n_heads // 2
    return weight.reshape(n_heads, half, 2, width).transpose(1, 2).reshape(rows, width)


# --- metadata -----------------------------------------------------------------------------------
def write_model_metadata(writer, source: Source, dtype: str) -> None:
    """The ``general.*`` and ``llama.*`` keys llama.cpp reads to build the graph."""
    import gguf

    cfg = source.model.config
    writer.add_name(source.name)
    writer.add_type("model")
    writer.add_context_length(cfg.context_length)
    writer.add_embedding_length(cfg.d_model)
    writer.add_block_count(cfg.n_layer)
    writer.add_feed_forward_length(cfg.d_ff)
    writer.add_head_count(cfg.n_head)
    writer.add_head_count_kv(cfg.n_kv_head)
    writer.add_layer_norm_rms_eps(cfg.norm_eps)
    writer.add_rope_freq_base(cfg.rope_theta)
    writer.add_rope_dimension_count(cfg.head_dim)  # every lane of the head is rotated
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if dtype == "f16" else gguf.LlamaFileType.ALL_F32)
    write_sampling_metadata(writer)


def write_sampling_metadata(writer) -> None:
    """`luna generate`'s sampling defaults, which recent llama.cpp versions pick up."""
    writer.add_sampling_temp(SAMPLING["temperature"])
    writer.add_sampling_top_k(SAMPLING["top_k"])
    writer.add_sampling_top_p(SAMPLING["top_p"])
    writer.add_sampling_penalty_repeat(SAMPLING["repetition_penalty"])


def write_tokenizer_metadata(writer, vocab: dict) -> None:
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab["pre"])
    writer.add_token_list(vocab["tokens"])
    writer.add_token_types(vocab["types"])
    writer.add_token_merges(vocab["merges"])
    # a fine-tuned base's own bos (its chat template writes it), else end-of-text: documents start after it
    writer.add_bos_token_id(vocab.get("bos_id", vocab["eot_id"]))
    writer.add_eos_token_id(vocab["eot_id"])
    writer.add_eot_token_id(vocab["eot_id"])
    writer.add_pad_token_id(vocab["pad_id"])
    writer.add_add_bos_token(False)  # lunalm never prepends a token; llama-bpe would by default
    writer.add_add_eos_token(False)
    if vocab.get("chat_template"):  # instruction fine-tunes: llama.cpp's chat mode renders prompts with it
        writer.add_chat_template(vocab["chat_template"])


# --- tokenizer ----------------------------------------------------------------------------------
def gguf_vocab(tokenizer, vocab_size: int) -> dict:
    """tokens, types, merges, pre-tokenizer name and special ids for llama.cpp's ``gpt2`` model.

    The list has exactly ``vocab_size`` entries (the embedding's rows, padded to a multiple of 64 in
    training): ids the tokenizer does not use become ``<|unused_N|>`` of type UNUSED.
    """
    import gguf

    spec = json.loads(tokenizer.inner.to_str())
    pre = llama_cpp_pre_tokenizer(tokenizer.kind, spec)
    tokens: dict[int, str] = {int(i): t for t, i in spec["model"]["vocab"].items()}
    types = {i: gguf.TokenType.NORMAL for i in tokens}
    for added in spec.get("added_tokens", []):
        tokens[added["id"]] = added["content"]
        types[added["id"]] = gguf.TokenType.CONTROL if added["special"] else gguf.TokenType.USER_DEFINED
    if max(tokens) >= vocab_size:
        raise ExportError(f"the tokenizer has ids up to {max(tokens)} but the model only {vocab_size} "
                          "embedding rows; the checkpoint's tokenizer does not belong to its model.")
    for index in range(vocab_size):
        if index not in tokens:
            tokens[index] = f"<|unused_{index}|>"
            types[index] = gguf.TokenType.UNUSED
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    return {"pre": pre, "tokens": [tokens[i] for i in range(vocab_size)],
            "types": [int(types[i]) for i in range(vocab_size)], "merges": merges,
            "eot_id": tokenizer.eot_id, "pad_id": tokenizer.pad_id}


def llama_cpp_pre_tokenizer(kind: str, spec: dict) -> str:
    """The llama.cpp pre-tokenizer name for this tokenizer, or ExportError if llama.cpp cannot run it."""
    model = (spec.get("model") or {}).get("type")
    if kind == "char":
        raise ExportError("this checkpoint uses a character-level tokenizer, which llama.cpp cannot "
                          "run (it has no WordLevel model); export it with --to hf, or train with "
                          "--tokenizer bpe to export GGUF.")
    decoder = (spec.get("decoder") or {}).get("type")
    if model != "BPE" or decoder != "ByteLevel":
        raise ExportError(f"GGUF export needs a byte-level BPE tokenizer (got a {model} model with a "
                          f"{decoder} decoder); export with --to hf and convert that folder with "
                          "llama.cpp's convert_hf_to_gguf.py, which knows more tokenizer kinds.")
    if kind == "bpe":
        return LLAMA_BPE_PRE
    pre = spec.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return GPT2_PRE
    raise ExportError("this pretrained tokenizer splits text with a pre-tokenizer lunalm cannot name "
                      "for llama.cpp; export with --to hf and convert that folder with llama.cpp's "
                      "convert_hf_to_gguf.py, which recognises known tokenizers by their output.")


def vocab_notes(pre: str) -> list[str]:
    if pre != LLAMA_BPE_PRE:
        return []
    return ["llama.cpp pre-tokenizes with Llama 3's rules (\"llama-bpe\"), not lunalm's Turkish-aware "
            "ones: a suffix that starts like an English contraction (Ankara'da, 144'ten) becomes one token "
            "more there (0.19 % more tokens on speeches, 0.89 % on news); give it NFC-normalised text."]


# --- Ollama ---------------------------------------------------------------------------------------
def modelfile_text(file_name: str, tokenizer, context_length: int) -> str:
    """An Ollama Modelfile for the exported file: `luna generate`'s sampling, the training context as
    ``num_ctx``, a stop at end-of-text, and the template: raw completion, or for an instruction fine-tune
    (a tokenizer with a chat template) the same turns in Ollama's Go template syntax, stopping at the end
    of a turn."""
    template, stops = '{{ .Prompt }}', [tokenizer.eot_token]
    if tokenizer.chat_template:
        from lunalm.finetune.chat import role_wrappers
        from lunalm.finetune.instructions import bos_of, compile_template, turn_end_ids

        compiled = compile_template(tokenizer.chat_template)
        wrappers = role_wrappers(compiled, tokenizer.eot_token, bos_of(tokenizer))
        if wrappers is not None:
            template = ollama_template(wrappers)
            stops += [tokenizer.inner.id_to_token(i) for i in turn_end_ids(compiled, tokenizer)[1:]]
    lines = [
        f"FROM ./{file_name}",
        f'TEMPLATE """{template}"""',
        f"PARAMETER num_ctx {context_length}",
        f"PARAMETER temperature {SAMPLING['temperature']}",
        f"PARAMETER top_k {SAMPLING['top_k']}",
        f"PARAMETER top_p {SAMPLING['top_p']}",
        f"PARAMETER repeat_penalty {SAMPLING['repetition_penalty']}",
        *(f'PARAMETER stop "{stop}"' for stop in stops),
    ]
    return "\n".join(lines) + "\n"


def ollama_template(wrappers) -> str:
    """The turns of a chat template (``lunalm.finetune.chat.RoleWrappers``) as an Ollama Go template."""
    roles = ["system", "user", "assistant"] if wrappers.system else ["user", "assistant"]
    branches = "".join(f'{{{{ {"if" if n == 0 else "else if"} eq .Role "{role}" }}}}'
                       f"{wrappers.prefix[role]}{{{{ .Content }}}}{wrappers.suffix[role]}"
                       for n, role in enumerate(roles))
    preamble = (f'{{{{- if ne (index .Messages 0).Role "system" }}}}{wrappers.preamble}{{{{ end }}}}'
                if wrappers.preamble else "")
    return f"{preamble}{{{{- range .Messages }}}}{branches}{{{{ end }}}}{{{{ end }}}}{wrappers.generation}"
