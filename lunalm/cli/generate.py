"""``luna generate`` and ``luna eval``: use a checkpoint."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path


def _load(path: str, device: str, trust_unverified: bool = False):
    from lunalm.train import checkpoint as ckpt
    from lunalm.train.device import resolve

    hw = resolve(device, "auto").for_scoring()
    model, tokenizer, meta = ckpt.load_checkpoint(Path(path), device=str(hw.device), trust_unverified=trust_unverified)
    return model, tokenizer, meta, hw


def run_generate(args) -> int:
    from lunalm.generate import SamplingConfig, generate

    model, tokenizer, _meta, hw = _load(args.checkpoint, args.device, args.trust_unverified)
    cfg = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                         top_p=args.top_p, repetition_penalty=args.repetition_penalty, seed=args.seed)
    stops = ()
    if tokenizer.chat_template:  # an instruction fine-tune's answer also ends at its template's end of turn
        from lunalm.finetune.instructions import compile_template, turn_end_ids

        stops = turn_end_ids(compile_template(tokenizer.chat_template), tokenizer)
    for index, prompt in enumerate(args.prompt or [""]):
        if index:
            print("\n" + "-" * 40)
        sys.stdout.write(prompt)
        sys.stdout.flush()

        def stream(piece: str) -> None:
            sys.stdout.write(piece)
            sys.stdout.flush()

        generate(model, tokenizer, prompt, cfg, on_text=stream, device=hw.device, stop_ids=stops)
        print()
    return 0


def run_eval(args) -> int:
    """Sliding-window bits per byte of whole documents (``lunalm.heldout``): the given text, else the run's
    own validation split."""
    from lunalm.errors import LunaError
    from lunalm.evaluate import padded_token_bytes
    from lunalm.heldout import score_documents

    model, tokenizer, meta, hw = _load(args.checkpoint, args.device, args.trust_unverified)
    examples = _eval_examples(args, tokenizer, meta, model.config.context_length)
    if examples is not None:
        return _report_examples(args, model, tokenizer, hw, *examples)
    documents, source = _eval_documents(args, tokenizer, meta)
    context = model.config.context_length
    stride = max(1, context // 2) if args.stride is None else args.stride  # 0 is refused below, not the default
    if not 1 <= stride <= context:
        raise LunaError(f"--stride {stride}: expected a number of tokens in [1, {context}] (the model's context)")
    result = score_documents(model, documents, padded_token_bytes(tokenizer, model.config.vocab_size), context=context, stride=stride,
                             batch_size=args.batch_size, device=hw.device, autocast=hw.autocast).to_dict()
    result.update(source=source, context=context, stride=stride)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(f"evaluated {result['tokens']:,} tokens ({result['bytes']:,} bytes) in {result['documents']:,} "
          f"document(s) of {source}")
    print(f"  method: {result['method']}")
    for name in ("bits_per_byte", "loss", "perplexity", "accuracy"):
        print(f"  {name:<14} {result[name]:.4f}")
    return 0


def _eval_examples(args, tokenizer, meta: dict, context: int):
    """Instruction examples to score, answer tokens only, as ``(rows, source)``: the given files with
    ``--format alpaca|chat`` (or detected), else an instruction fine-tune's own held-out examples; None
    when the text is to be scored as documents."""
    from lunalm.config import run_config_from_dict
    from lunalm.finetune.instructions import DEFAULT_TEMPLATE, build_instruction_data, detect_format

    if args.paths:
        fmt = args.format if args.format != "auto" else detect_format(args.paths)
        if fmt == "text":
            return None
        tokenizer.chat_template = tokenizer.chat_template or DEFAULT_TEMPLATE
        data = build_instruction_data(args.paths, fmt, tokenizer, context, 1.0, 0)
        rows = data.val if len(data.val[0]) else data.train
        return rows, f"{len(rows[0]):,} {fmt} example(s) of {', '.join(args.paths)}{data.left_out()}"
    config = run_config_from_dict(meta["config"]) if "config" in meta else None
    if config is None or config.finetune is None or config.finetune.format == "text":
        return None
    from lunalm.train.prepare import prepare_data

    data = prepare_data(config, tokenizer=tokenizer, progress=False, log=lambda text: None).instructions
    rows, which = (data.val, "held-out") if len(data.val[0]) else (data.train, "training (no validation split)")
    return rows, f"the run's {len(rows[0]):,} {which} {config.finetune.format} example(s)"


def _report_examples(args, model, tokenizer, hw, rows, source: str) -> int:
    from lunalm.evaluate import evaluate, padded_token_bytes
    from lunalm.finetune.instructions import eval_batches

    batches = eval_batches(rows, args.batch_size, len(rows[0]))
    result = evaluate(model, batches, token_bytes=padded_token_bytes(tokenizer, model.config.vocab_size),
                      device=hw.device, autocast=hw.autocast).to_dict()
    method = "each example in one window, the prompt given and not scored: the answer tokens (and the end of the " \
             "turn) only"
    result.update(source=source, method=method, examples=len(rows[0]))
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(f"evaluated {result['tokens']:,} answer tokens of {source}")
    print(f"  method: {method}")
    for name in ("bits_per_byte", "loss", "perplexity", "accuracy"):
        print(f"  {name:<14} {result[name]:.4f}")
    return 0


def _trained_files(files: list[Path], trained) -> list[Path]:
    """Which of ``files`` the run's training corpus (``trained``, a CorpusConfig) holds: the same file, or a
    copy of one (same size and content). [] where the training files cannot be found from here (a relative
    path from another folder), or the run trained on the built-in corpus."""
    import functools
    import hashlib

    from lunalm.corpus.discover import discover
    from lunalm.errors import LunaError

    if not trained.paths:
        return []
    try:
        training = discover(trained.paths, trained.include, trained.exclude)
    except (LunaError, OSError):
        return []
    resolved = {file.resolve() for file in training}
    by_size: dict[int, list[Path]] = {}
    for file in training:
        by_size.setdefault(file.stat().st_size, []).append(file)

    @functools.cache
    def digest(file: Path) -> bytes:  # each training file hashed once, only where an evaluated one has its size
        return hashlib.sha1(file.read_bytes()).digest()

    return [file for file in files if file.resolve() in resolved or any(
        digest(file) == digest(other) for other in by_size.get(file.stat().st_size, ()))]


def _eval_documents(args, tokenizer, meta: dict) -> tuple[list[list[int]], str]:
    """Token ids of each document to score (boundary token first): the given files, else the run's own
    validation split; at most ``--max-tokens`` targets, whole documents only."""
    from lunalm.config import RunConfig, run_config_from_dict
    from lunalm.corpus import Corpus
    from lunalm.heldout import first_documents, split_documents
    from lunalm.train.prepare import prepare_data

    if args.paths:
        # read as the run read its own text (the prose filter, repair, de-duplication), unless told otherwise
        run = run_config_from_dict(meta["config"]) if "config" in meta else RunConfig()
        trained = run.corpus
        settings = {"paths": tuple(args.paths), "text_field": args.text_field or trained.text_field}
        if args.include:
            settings["include"] = tuple(args.include)
        if args.filter is not None:
            settings["filter_non_prose"] = args.filter
        config = dataclasses.replace(trained, **settings)
        corpus = Corpus(config)
        if seen := _trained_files(corpus.files, trained):
            names = ", ".join(str(file) for file in seen[:3]) + (f" and {len(seen) - 3} more" if len(seen) > 3 else "")
            print(f"warning: {len(seen)} of the {len(corpus.files)} file(s) to evaluate are in this run's training "
                  f"corpus ({names}): it trained on all but its validation share ({run.data.val_fraction:.0%} of the "
                  "documents), so this score flatters it. Evaluate on text it never saw, or give no PATH to score "
                  "the run's own validation split", file=sys.stderr)
        documents = ([tokenizer.eot_id, *tokenizer.encode(d.text)] for d in corpus.documents())
        source = corpus.name + (", its non-prose removed as in training (--no-filter keeps it)"
                                if config.filter_non_prose else "")
    elif "config" not in meta:
        from lunalm.errors import LunaError
        raise LunaError(f"{args.checkpoint} carries no run config; pass the text to evaluate on as PATH")
    else:
        config = run_config_from_dict(meta["config"])
        data = prepare_data(config, tokenizer=tokenizer, progress=False, log=lambda text: None)
        documents = split_documents(data.shards.split("val"), tokenizer.eot_id)
        source = f"the run's validation split ({data.corpus_name})"
    documents = iter(documents)  # files are encoded only as far as they are scored
    kept = first_documents(documents, args.max_tokens)
    if next(documents, None) is not None:
        source += f", its first {len(kept):,} document(s) (--max-tokens {args.max_tokens:,})"
    return kept, source
