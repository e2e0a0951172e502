"""``luna generate`` and ``luna eval``: use a checkpoint."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _load(path: str, device: str, trust_unverified: bool = False):
    from lunalm.train import checkpoint as ckpt
    from lunalm.train.device import resolve

    hw = resolve(device, "auto")
    model, tokenizer, meta = ckpt.load_checkpoint(Path(path), device=str(hw.device), trust_unverified=trust_unverified)
    return model, tokenizer, meta, hw


def run_generate(args) -> int:
    from lunalm.generate import SamplingConfig, generate

    model, tokenizer, _meta, hw = _load(args.checkpoint, args.device, args.trust_unverified)
    cfg = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                         top_p=args.top_p, repetition_penalty=args.repetition_penalty, seed=args.seed)
    for index, prompt in enumerate(args.prompt or [""]):
        if index:
            print("\n" + "-" * 40)
        sys.stdout.write(prompt)
        sys.stdout.flush()

        def stream(piece: str) -> None:
            sys.stdout.write(piece)
            sys.stdout.flush()

        generate(model, tokenizer, prompt, cfg, on_text=stream, device=hw.device)
        print()
    return 0


def run_eval(args) -> int:
    import torch

    from lunalm.data.batches import fixed_eval_batches
    from lunalm.evaluate import evaluate, token_byte_lengths

    model, tokenizer, meta, hw = _load(args.checkpoint, args.device, args.trust_unverified)
    tokens, source = _eval_tokens(args, tokenizer, meta)
    # a text shorter than the model's context (a paragraph, a sentence) is scored as one shorter window
    context = min(model.config.context_length, max(1, len(tokens) - 1))
    batches = fixed_eval_batches(tokens, context, args.batch_size, args.max_batches)
    lengths = token_byte_lengths(tokenizer)
    token_bytes = torch.zeros(model.config.vocab_size, dtype=lengths.dtype)
    token_bytes[: len(lengths)] = lengths
    result = evaluate(model, batches, token_bytes=token_bytes, device=hw.device, autocast=hw.autocast).to_dict()
    result["source"] = source
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(f"evaluated {result['tokens']:,} tokens of {source}")
    for name in ("loss", "perplexity", "accuracy", "bits_per_byte"):
        print(f"  {name:<14} {result[name]:.4f}")
    return 0


def _eval_tokens(args, tokenizer, meta: dict):
    """Token ids to score: the given files, else the run's own validation split."""
    import numpy as np

    from lunalm.config import CorpusConfig, run_config_from_dict
    from lunalm.corpus import Corpus
    from lunalm.train.prepare import prepare_data

    if args.paths:
        corpus = Corpus(CorpusConfig(paths=tuple(args.paths)))
        ids: list[int] = []
        for document in corpus.documents():
            ids.extend(tokenizer.encode(document.text))
            ids.append(tokenizer.eot_id)
        return np.asarray(ids, dtype=np.int64), corpus.name
    if "config" not in meta:
        from lunalm.errors import LunaError
        raise LunaError(f"{args.checkpoint} carries no run config; pass the text to evaluate on as PATH")
    config = run_config_from_dict(meta["config"])
    data = prepare_data(config, tokenizer=tokenizer, progress=False, log=lambda text: None)
    return data.shards.split("val"), f"the run's validation split ({data.corpus_name})"
