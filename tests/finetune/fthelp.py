"""Tiny random Hugging Face bases saved locally (the code path real weights take) and instruction files."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import TURKISH

ALPACA = [{"instruction": "Başkent neresi?", "input": "", "output": "Ankara."},
          {"instruction": "Çevir", "input": "merhaba dünya", "output": "hello world"},
          {"instruction": "Bir şehir söyle.", "output": "İstanbul güzel bir şehirdir."},
          {"instruction": "Kısa yaz.", "input": "deniz", "output": "Mavi deniz."}] * 4
CHAT = [{"messages": [{"role": "system", "content": "Kısa cevap ver."},
                      {"role": "user", "content": "Selam!"}, {"role": "assistant", "content": "Merhaba."},
                      {"role": "user", "content": "Nasılsın?"}, {"role": "assistant", "content": "İyiyim."}]}] * 8


def tiny_tokenizer(folder: Path):
    from lunalm.tokenizer import train_bpe

    tokenizer = train_bpe(TURKISH * 3, vocab_size=300)
    tokenizer.save(folder)
    return tokenizer


def tiny_base(folder: Path, arch: str = "gpt2", seed: int = 0) -> Path:
    """A 2-layer, 32-wide random model of ``arch`` plus a BPE tokenizer, saved with save_pretrained."""
    import torch
    import transformers as tf

    tokenizer = tiny_tokenizer(folder)
    vocab = tokenizer.vocab_size
    ids = {"bos_token_id": tokenizer.eot_id, "eos_token_id": tokenizer.eot_id, "pad_token_id": tokenizer.eot_id}
    configs = {
        "gpt2": lambda: tf.GPT2Config(vocab_size=vocab, n_positions=128, n_embd=32, n_layer=2, n_head=2, **ids),
        "llama": lambda: tf.LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                        max_position_embeddings=128, **ids),
        "gpt_neo": lambda: tf.GPTNeoConfig(vocab_size=vocab, max_position_embeddings=128, hidden_size=32,
                                           num_layers=2, num_heads=2, attention_types=[[["global", "local"], 1]],
                                           window_size=16, **ids),
        "phi": lambda: tf.PhiConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                    num_attention_heads=2, max_position_embeddings=128, **ids),
        "gpt_neox": lambda: tf.GPTNeoXConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=2, num_attention_heads=2,
                                             max_position_embeddings=128, **ids),
        "mistral": lambda: tf.MistralConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                            num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                            max_position_embeddings=128, **ids),
        "qwen2": lambda: tf.Qwen2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                        max_position_embeddings=128, **ids),
        "phi3": lambda: tf.Phi3Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, max_position_embeddings=128, **ids),
    }
    torch.manual_seed(seed)
    config = configs[arch]()
    model = tf.AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path
