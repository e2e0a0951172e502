"""GGUF for ``luna finetune`` checkpoints of Hugging Face bases: Llama through lunalm's own model, GPT-2
as llama.cpp's ``gpt2`` architecture; every other architecture is refused with one sentence.

**Llama.** A plain Llama (SiLU, no biases, default RoPE) has exactly lunalm's parameter names and layout,
so its weights load into ``LunaLM`` and take the same path as a lunalm checkpoint (q/k rows interleaved
for llama.cpp's RoPE, ``lunalm.export.gguf``). Llama variants lunalm cannot represent (scaled RoPE,
biases) are refused, naming the config key.

**GPT-2.** Tensor names follow ``gguf.get_tensor_name_map`` for ``MODEL_ARCH.GPT2`` (``transformer.h.N
.attn.c_attn`` -> ``blk.N.attn_qkv`` ...). GPT-2's ``Conv1D`` stores weights as (in, out), the transpose
of ``nn.Linear``; llama.cpp expects (out, in), so the four Conv1D matrices are transposed, as llama.cpp's
``convert_hf_to_gguf.py`` does. ``output.weight`` is written even though GPT-2 ties it to the token
embedding, again as that converter does (older llama.cpp builds require it). Keys: ``gpt2.context_length``
(n_positions), ``embedding_length``, ``feed_forward_length`` (n_inner, default 4 x n_embd),
``block_count``, ``attention.head_count``, ``attention.layer_norm_epsilon``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator

from lunalm.export.common import ExportError, Source

GGUF_HF_TYPES = ("llama", "gpt2")  # the fine-tuned architectures GGUF export writes
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def check_gguf_architecture(source: Source) -> None:
    """One sentence when llama.cpp export of this fine-tuned architecture is not supported."""
    model_type = source.hf_model_type
    if model_type is not None and model_type not in GGUF_HF_TYPES:
        raise ExportError(f"GGUF export supports lunalm models and fine-tunes of Llama and GPT-2 bases, not "
                          f"{model_type}; export with --to hf and convert that folder with llama.cpp's "
                          "convert_hf_to_gguf.py.")


def as_lunalm_source(source: Source) -> Source:
    """A fine-tuned Hugging Face Llama as a ``LunaLM`` source (same names and weights); others unchanged."""
    if source.hf_model_type != "llama":
        return source
    import json

    from lunalm.errors import ConfigError
    from lunalm.model import LunaLM, from_hf_config

    hf = json.loads(source.model.hf_config.to_json_string())
    try:
        cfg = from_hf_config(hf)
    except ConfigError as error:
        raise ExportError(f"{source.directory}: this fine-tuned Llama cannot be written as GGUF by lunalm "
                          f"({error}); export with --to hf and convert that folder with llama.cpp's "
                          "convert_hf_to_gguf.py.") from None
    model = LunaLM(cfg)
    state = source.model.inner.state_dict()
    if cfg.tie_embeddings:
        state.pop("lm_head.weight", None)
    missing = set(model.load_state_dict(state, strict=False).missing_keys) - {"lm_head.weight"}
    assert not missing, missing
    return dataclasses.replace(source, model=model.eval())


def write_gpt2_gguf(source: Source, path: Path, dtype: str, vocab: dict) -> None:
    """The GGUF file of a fine-tuned GPT-2: header, metadata, tokenizer, then the tensors."""
    import gguf

    from lunalm.export.gguf import write_sampling_metadata, write_tensors, write_tokenizer_metadata

    hf = source.model.hf_config
    writer = gguf.GGUFWriter(str(path), "gpt2")
    writer.add_name(source.name)
    writer.add_type("model")
    writer.add_context_length(hf.n_positions)
    writer.add_embedding_length(hf.n_embd)
    writer.add_feed_forward_length(hf.n_inner or 4 * hf.n_embd)
    writer.add_block_count(hf.n_layer)
    writer.add_head_count(hf.n_head)
    writer.add_layer_norm_eps(hf.layer_norm_epsilon)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if dtype == "f16" else gguf.LlamaFileType.ALL_F32)
    write_sampling_metadata(writer)
    write_tokenizer_metadata(writer, vocab)
    write_tensors(writer, gpt2_tensors(source.model.inner, dtype))


def gpt2_tensors(model, dtype: str) -> Iterator[tuple[str, "np.ndarray"]]:
    """(llama.cpp name, numpy array) for every GPT-2 tensor; Conv1D weights transposed to (out, in)."""
    import gguf
    import numpy as np

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GPT2, model.config.n_layer)
    state = dict(model.state_dict())
    state.setdefault("lm_head.weight", state["transformer.wte.weight"])
    for name, tensor in state.items():
        if name.endswith((".attn.bias", ".attn.masked_bias")):
            continue  # causal-mask buffers some transformers versions keep, not weights
        tensor = tensor.detach().float().cpu()
        if name.endswith(_CONV1D):
            tensor = tensor.t()
        target = names.get_name(name, try_suffixes=(".weight", ".bias"))
        assert target is not None, f"no llama.cpp name for {name}"
        array = tensor.contiguous().numpy()
        if dtype == "f16" and array.ndim > 1:  # norms and biases stay f32, as llama.cpp's converter keeps them
            array = array.astype(np.float16)
        yield target, array
