"""From a corpus and a machine to a complete, explained run configuration.

The rules are the ones a practitioner applies by hand, written down so they can be read and tested:

* **Model size against data.** Tokens seen per non-embedding parameter over the run decide the size:
  the goal sets how many epochs are worth it (repeated data stops paying after ~4 passes and is
  nearly worthless after ~16; Muennighoff et al. 2023, "Scaling Data-Constrained Language Models") and
  how many tokens each parameter needs (fast: 20, Chinchilla's compute-optimal ratio, Hoffmann et al.
  2022; balanced: 5; best: 1, with dropout and early stopping to catch overfitting). The largest preset
  meeting the ratio, fitting in memory and finishing within ``--hours`` wins; where ``--hours`` on a GPU
  repeats the text 16 times with time to spare, a larger preset that still gets the 16 passes (down to
  0.15 tokens seen per parameter).
* **Regularisation** where the text repeats (> 4 passes): weight decay whose averaging window is a third
  of the run, and dropout 0.2 below 0.3 unique tokens per parameter.
* **Context** covers a typical document (the median, rounded up to a power of two, 128..1024; 128 at
  most on a CPU where a shorter window buys more steps), and the reason says when it cannot.
* **Global batch** in tokens: enough optimizer steps for the goal (300 / 1,000 / 2,000), a power of two
  between 8K and 512K tokens; the micro-batch is the largest power of two that fits (memory model, or the
  probe), accumulation makes up the rest. Activation checkpointing only when not even micro-batch 1 fits.
* **Learning rate** by model size (``lunalm.train.schedule.default_lr``) or the range test; warmup 5 %.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field, replace

from lunalm.config import (MUON_LR_SCALE, MUON_MAX_PASSES, CorpusConfig, DataConfig, ModelChoice, RunConfig,
                           TokenizerConfig, TrainConfig, resolve_optimizer)
from lunalm.errors import ConfigError, CorpusError
from lunalm.model import PRESETS, ModelConfig, count_parameters, flops_per_token, model_config_from_preset
from lunalm.plan.hardware import GiB, Machine
from lunalm.plan.memory import MemoryEstimate, device_bytes, estimate_training_memory, usable_bytes

AUTO_PRESETS = ("nano", "tiny", "small", "medium")  # in size order; "gpt2" is for GPT-2 comparisons
# "pico" (4 layers x 96) is no candidate: it is taken only where nano is too big for the time (below). On a
# CPU where nano sees ~3 tokens per parameter in 3 minutes (held-out bits/byte) pico makes 10-45 % more steps
# but wins only on some texts: one thread each, side by side, Azerbaijani
# lyrics 2.1926 against 2.2500, the speeches 1.5016 against 1.5079, nutuk-en 1.5488 against 1.5520; two
# threads, one after the other (the benchmark's setting), the lyrics 2.1270 against 2.1464 but the speeches
# 1.4804 against 1.4672 and the held-out domain 1.9164 against 1.8929 (README, "Which model for the time").
# A model that would see fewer tokens than this per non-embedding parameter in the time budget is too big for
# the time: the next smaller preset learns more in it (so a CPU plan, and `luna train` with no --preset on a
# CPU, take pico there). Held-out bits/byte of the speeches on a 2-core fp32 CPU: 3 minutes, ~1.0 tokens per
# parameter (432 nano steps), pico 1.5473 against nano 1.5955; 5 minutes, ~1.7 (707 steps), 1.458 against
# 1.469; on a faster CPU, 3 minutes at ~3.1 (1,296 steps), nano won, 1.4672 against 1.4804.
TOKENS_PER_PARAM_FOR_SIZE = 2.0
SMALLER_PRESET = {"nano": "pico"}


def smaller_for_time(cfg: ModelConfig, preset: str, tokens: float) -> str | None:
    """The preset to train instead of ``preset`` (shaped ``cfg``) when the time gives it only ``tokens``,
    fewer than TOKENS_PER_PARAM_FOR_SIZE per non-embedding parameter; None when it is not too big."""
    smaller = SMALLER_PRESET.get(preset)
    too_big = tokens < TOKENS_PER_PARAM_FOR_SIZE * count_parameters(cfg, non_embedding=True)
    return smaller if smaller and too_big else None


GOALS = {  # epochs worth doing, tokens per parameter wanted, minimum optimizer steps
    "fast": dict(epochs=1.0, tokens_per_param=20.0, min_steps=300, patience=3),
    "balanced": dict(epochs=4.0, tokens_per_param=5.0, min_steps=1000, patience=5),
    "best": dict(epochs=10.0, tokens_per_param=1.0, min_steps=2000, patience=8),
}
CPU_CONTEXT = 128  # tokens: the longest context a CPU plan picks
MIN_LEARNING_STEPS = 300  # optimizer steps below which a run learns little beyond word frequencies
# Up to this many passes a repeated text is nearly as good as new (Muennighoff et al. 2023), so a plan
# keeps dropout off: on the 3-minute speeches plan (~3 passes, 1,500 fixed steps, nano) held-out bits/byte
# were 1.5266 without dropout against 1.5453 with 0.1 (weight-averaged; 1.5339 against 1.5508 raw).
FRESH_PASSES = 4
# AdamW's decoupled decay keeps the weights an average over the last ~1/(lr * weight_decay) steps (Wang &
# Aitchison 2024). Where the text repeats, a plan sets that window to a third of its steps (the default 0.1
# is a window longer than a short run): on the 3-minute speeches plan (1,350 fixed steps of 16 x 128, ~6.7
# passes, dropout 0.1) held-out bits/byte were 1.4846 with decay 0.8 against 1.4975 with 0.1. Only there:
# at ~3 passes (600 steps, no dropout) decay 0.8 cost 1.8 % (1.6232 against 1.5952). The window holds past
# a decay of 1: on an H200 (speeches, nano, 711 steps of 16 x 512, 16 passes) decay 0.1 gave 1.4998, 0.9
# 1.4715 and 1.5 (the window's own value) 1.4661.
DECAY_WINDOW = 1 / 3  # the window's share of the run
# Muon steps at MUON_LR_SCALE x the lr and keeps the window its plans were measured with at 1.5x: a third
# of the run at the plain lr, so 2/9 of it. A higher lr pays only with that window held: lr x 3 with the
# decay halved against lr x 1.5 (fixed steps, seed 1337): Azerbaijani lyrics 2.1531 against 2.1948, seed
# 2024 2.1548 against 2.1674, the speeches 1.4589 against 1.4620, nutuk-en 1.5177 against 1.5164; with the
# decay kept (a window half as long) lr x 2.25 and x 3 were no better than x 1.5 (lunalm.config).
MUON_DECAY_WINDOW = 2 / 9
# Dropout on top of that decay only where the text is tiny for the model (< 0.3 unique tokens per
# parameter). 1,500 fixed steps, decay 0.8, weight-averaged held-out bits/byte: the small corpus (0.1 tokens
# per parameter, ~16 passes) 2.0293 without dropout, 2.0271 with 0.1, 2.0080 with 0.2; the speeches (0.4,
# ~6.7 passes, 1,350 steps) 1.4770 without against 1.4846 with 0.1.
DROPOUT, DROPOUT_BELOW = 0.2, 0.3
MAX_USEFUL_EPOCHS = 16  # repeating the same text past ~16 passes adds nothing (Muennighoff et al. 2023)
# Where --hours repeats the text all MAX_USEFUL_EPOCHS times with time to spare, a larger model with the
# decay window above beats a smaller one over the same passes, down to this many tokens seen per
# non-embedding parameter. On an H200, speeches (364,303 tokens, 711 steps of 16 x 512), held-out bits/byte:
# nano (6.9 seen per parameter) 1.4715, tiny (1.7) 1.4567, small (0.18) 1.4468 (PPMd 1.5035); nutuk-en:
# nano 1.6136, tiny 1.5630 (bench/bench_recipe.py --device cuda --hours 0.05). Pre-training with far more
# compute than data favours the same (Kim et al. 2025, "Pre-training under infinite compute"). Not on a CPU:
# there the small corpus with 15 minutes scored 2.0085 and 2.0169 in two runs of tiny (321 and 326 s) against
# nano's 2.0143 (176 s), the same model in twice the user's time.
SPARE_TOKENS_PER_PARAM = 0.15
# Below this many characters PPMd, conditioned on the training text, beat every CPU plan this project
# measured on held-out bits/byte (README: the small speeches 1.901 against 1.979-2.014, Turkish poems 2.343
# against 2.398-2.437, Fuzuli's divan 1.983 against 2.134); above it the model won on the speeches, nutuk-en,
# English novels and Turkish articles and lost on the Azerbaijani lyrics, Turkish newspaper columns and the
# news of 1150haber.
COMPRESSOR_WINS_BELOW = 1_000_000
FAR_TOO_SMALL = 0.2  # unique training tokens per non-embedding parameter below which a model memorises
SAMPLE_CHARS = 8_000_000  # characters used to train the planning tokenizer and measure chars/token
# A larger corpus is planned from a spread of its files of about this size (``Corpus.sample``): its
# characters are scaled up by bytes, its documents by files. Reading every file cost a 300 MB folder 3 minutes of
# planning, as long as the 3-minute run it planned. A corpus of too few files for a spread (one 300 MB text
# file: 68 s of planning) is read up to this many of its bytes, and scaled by bytes.
READ_BYTES = 64 << 20


@dataclass(frozen=True)
class CorpusFacts:
    name: str
    documents: int
    chars: int
    tokens: int  # estimated with a tokenizer of the planned kind and vocabulary
    chars_per_token: float
    median_doc_tokens: int
    p90_doc_tokens: int
    vocab_size: int
    tokenizer_kind: str
    read_share: float = 1.0  # share of the corpus's bytes read: under 1, chars are scaled up by bytes and
    #                           documents by files (by bytes too where its first bytes were read: ``spread`` False)
    spread: bool = True  # what was read is a spread of the files, not the first bytes of a few large ones
    prepare_seconds: float = 0.0  # ~time ``luna train`` spends on the tokenizer and token shards (uncached)


@dataclass(frozen=True)
class Request:
    """What the user asked for (None: let the plan decide)."""

    goal: str = "balanced"
    hours: float | None = None
    preset: str | None = None
    epochs: float | None = None
    context_length: int | None = None
    val_fraction: float = 0.1
    nproc: int = 1  # data-parallel processes (one per GPU): global batch = micro x accumulation x nproc


@dataclass
class Plan:
    config: RunConfig
    machine: Machine
    facts: CorpusFacts
    model: ModelConfig
    memory: MemoryEstimate
    memory_limit: int  # bytes training tensors may use on this device
    why: dict[str, str] = field(default_factory=dict)  # "section.field" -> plain-words reason
    warnings: list[str] = field(default_factory=list)
    estimates: dict = field(default_factory=dict)
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    probe: dict | None = None


def corpus_facts(corpus: CorpusConfig, tokenizer: TokenizerConfig, progress=None) -> tuple[CorpusFacts, list]:
    """Stream the corpus (a spread of its files when it is over READ_BYTES; its first READ_BYTES when it has
    too few files for a spread) once: document lengths, and a planning tokenizer trained on a sample of it. ``progress``: a tqdm-like bar (``reset``, ``update``) of
    bytes read.

    Returns the facts and the sample's token ids (one list per document, for the learning-rate test)."""
    from lunalm.corpus import Corpus
    from lunalm.tokenizer import (TOKENIZER_SAMPLE_BYTES, TOKENIZER_SAMPLE_CHARS, Tokenizer, default_vocab_size,
                                  train_bpe, train_char)

    started = time.perf_counter()
    reader = Corpus(corpus)
    corpus_bytes, sampled = reader.bytes, reader.sample(READ_BYTES)
    scale = reader.text_bytes / sampled.text_bytes if len(sampled.files) < len(reader.files) else 1.0
    per_file = len(reader.files) / len(sampled.files) if sampled.files else 1.0  # documents scale by files
    if progress is not None:  # bytes of text, about; too few files for a spread: their first READ_BYTES
        progress.reset(total=(READ_BYTES if sampled.stop_bytes else sampled.text_bytes) or None)
    lengths, sample, sample_chars = [], [], 0
    for document in sampled.documents():
        lengths.append(len(document.text))
        if sample_chars < SAMPLE_CHARS:
            sample.append(document.text)
            sample_chars += len(document.text)
        if progress is not None:
            progress.update(len(document.original.encode("utf-8", "surrogatepass")))
    if sampled.read_bytes:  # stopped part-way through a few large files: everything scales by bytes
        scale = per_file = corpus_bytes / sampled.read_bytes
    documents, total = round(len(lengths) * per_file), round(sum(lengths) * scale)
    read = (time.perf_counter() - started) * scale  # seconds to read, clean and judge the whole corpus
    started = time.perf_counter()
    if tokenizer.kind == "pretrained":
        tok = Tokenizer.load(tokenizer.path)
    elif tokenizer.kind == "char":
        tok = train_char(sample)
    else:
        tok = train_bpe(sample, tokenizer.vocab_size or default_vocab_size(total), tokenizer.min_frequency)
    learn, started = time.perf_counter() - started, time.perf_counter()
    sample_ids = tok.encode_batch(sample)
    encode = time.perf_counter() - started
    per_char = 1 / max(1, sample_chars)
    # What ``luna train`` does before its first step, as timed here: learn a tokenizer (BPE: reading a
    # sample of up to TOKENIZER_SAMPLE_CHARS again; char: the whole corpus), then read and encode everything.
    if tokenizer.kind == "bpe":
        share = min(1.0, TOKENIZER_SAMPLE_CHARS / max(1, total), TOKENIZER_SAMPLE_BYTES / max(1, reader.text_bytes))
        learn = (read + learn * total * per_char) * share
    else:
        learn = read if tokenizer.kind == "char" else 0.0
    prepare = learn + read + encode * total * per_char
    sample_tokens = sum(len(ids) for ids in sample_ids)
    cpt = sample_chars / max(1, sample_tokens)
    ordered = sorted(lengths)
    return CorpusFacts(name=reader.name, documents=documents, chars=total,
                       tokens=int(total / cpt) + documents,  # + one end-of-text per document
                       chars_per_token=cpt, median_doc_tokens=int(statistics.median(ordered) / cpt),
                       p90_doc_tokens=int(ordered[int(0.9 * (len(ordered) - 1))] / cpt),
                       vocab_size=tok.vocab_size, tokenizer_kind=tokenizer.kind,
                       read_share=1 / scale, spread=not sampled.read_bytes, prepare_seconds=round(prepare, 1)), sample_ids


def make_plan(facts: CorpusFacts, machine: Machine, request: Request, *, corpus: CorpusConfig,
              tokenizer: TokenizerConfig, measured: tuple[ModelConfig, float] | None = None,
              measured_lr: float | None = None, speed_factor: tuple[float, int] = (1.0, 0)) -> Plan:
    """Choose every setting; raise ConfigError when nothing sensible fits.

    ``measured`` is a probe's (model it timed, tokens/s): other shapes are scaled from it by FLOPs per token.
    ``speed_factor`` is (actual / planned tokens/s, runs) from past runs on this device (the registry)."""
    if request.goal not in GOALS:
        raise ConfigError(f"--goal {request.goal!r}: expected one of {', '.join(GOALS)}")
    if request.preset is not None and request.preset not in PRESETS:
        raise ConfigError(f"--preset {request.preset!r}: expected one of {', '.join(PRESETS)}")
    goal = GOALS[request.goal]
    why: dict[str, str] = {}
    warnings: list[str] = []
    train_tokens = int(facts.tokens * (1 - request.val_fraction))
    vocab = 64 * math.ceil(facts.vocab_size / 64)
    limit = usable_bytes(machine.memory_bytes, machine.kind)

    context = request.context_length or _context_for(facts, machine)
    if request.context_length:
        why["data.context_length"] = "as you asked"
    else:
        typical = f"median {facts.median_doc_tokens:,} tokens, 90 % under {facts.p90_doc_tokens:,}"
        if context >= facts.median_doc_tokens:
            why["data.context_length"] = f"covers a typical document ({typical})"
        elif machine.kind == "cpu":
            why["data.context_length"] = (f"shorter than a typical document ({typical}): at most {CPU_CONTEXT} on a "
                                          "CPU, where a shorter window buys more steps in the same time; the "
                                          "model sees each document in windows")
        else:
            why["data.context_length"] = (f"shorter than a typical document ({typical}): 1,024 at most; the model "
                                          "sees each document in windows")
    min_window = context + 1
    if train_tokens < 8 * min_window:
        need_tokens = 8 * min_window / (1 - request.val_fraction)
        raise CorpusError(f"{facts.name}: about {train_tokens:,} training tokens is too little to train on "
                          f"(not even 8 windows of {context} tokens); gather at least {need_tokens:,.0f} tokens "
                          f"(~{need_tokens * facts.chars_per_token / 1e3:,.0f} KB of text) or lower --context")

    epochs_cap = request.epochs or goal["epochs"]
    candidates = [request.preset] if request.preset else list(AUTO_PRESETS)
    chosen, spare, chosen_seen = None, False, 0.0
    for name in candidates:
        cfg = model_config_from_preset(name, vocab, context)
        n_body = count_parameters(cfg, non_embedding=True)
        fits, _, _ = _batch_that_fits(cfg, machine, limit)
        seen = train_tokens * epochs_cap
        if request.hours and not request.epochs:  # the time decides how much text the model sees
            seen = min(train_tokens * MAX_USEFUL_EPOCHS,
                       _tokens_in_time(request, cfg, machine, context, measured, speed_factor[0]))
        data_ok = seen / n_body >= goal["tokens_per_param"]
        grows = (not data_ok and request.hours is not None and not request.epochs and fits and machine.kind != "cpu"
                 and seen >= train_tokens * MAX_USEFUL_EPOCHS and seen / n_body >= SPARE_TOKENS_PER_PARAM)
        if fits and (data_ok or grows or chosen is None or request.preset):
            chosen, spare, chosen_seen = name, grows, seen
        if not (data_ok or grows) and not request.preset:
            break
    if (chosen and not request.preset and not request.epochs and request.hours and machine.kind == "cpu"
            and chosen_seen < train_tokens * MAX_USEFUL_EPOCHS):  # the time, not the text, limits the run
        body_cfg = model_config_from_preset(chosen, vocab, context)
        smaller = smaller_for_time(body_cfg, chosen, chosen_seen)
        if smaller:
            body = count_parameters(body_cfg, non_embedding=True)
            why["model.preset"] = (f"{smaller}, not {chosen}: --hours {request.hours:g} trains {chosen} on ~"
                                   f"{_count_text(chosen_seen)} tokens on {machine.name}, {chosen_seen / body:.2g} "
                                   f"per non-embedding parameter (below {TOKENS_PER_PARAM_FOR_SIZE:g}): too big for "
                                   "the time, the smaller model learns more in it")
            chosen = smaller
    if chosen is None:
        smallest = model_config_from_preset("nano", vocab, 128)
        need = device_bytes(estimate_training_memory(smallest, 1, precision=machine.precision,
                                                    device_kind=machine.kind, device_memory=machine.memory_bytes, averaged=True).peak, machine.kind)
        raise ConfigError(f"{machine.name}: {limit / GiB:.2f} GB usable is too little for even the "
                          f"smallest model (preset nano needs ~{need / GiB:.2f} GB at micro-batch 1); "
                          "train on a CPU (--device cpu) or a larger GPU")

    preset = chosen
    if request.preset:
        cfg = model_config_from_preset(preset, vocab, context)
        ratio = train_tokens / count_parameters(cfg, non_embedding=True)
        if ratio < FAR_TOO_SMALL:
            fitting = _largest_fitting(train_tokens, vocab, context, machine, limit, goal)
            needed = count_parameters(cfg, non_embedding=True) * goal["tokens_per_param"] / goal["epochs"]
            warnings.append(
                f"the corpus is far too small for preset {preset}: {train_tokens:,} training tokens for "
                f"{count_parameters(cfg, non_embedding=True) / 1e6:.1f}M non-embedding parameters "
                f"({ratio:.2f} tokens per parameter) — it would memorise the text within a few epochs "
                f"and generalise badly. Planned preset {fitting} instead; to train {preset} well "
                f"(goal {request.goal}), gather ~{needed / 1e6:.0f}M tokens or more (~{needed * facts.chars_per_token / 1e6:.0f} MB "
                f"of text, {needed / max(1, train_tokens):.0f}x what you have)")
            why["model.preset"] = f"{fitting}, not the requested {preset}: see the warning"
            preset = fitting
        else:
            why["model.preset"] = "as you asked"
    cfg = model_config_from_preset(preset, vocab, context)
    n_body = count_parameters(cfg, non_embedding=True)
    n_params = count_parameters(cfg)
    unique_ratio = train_tokens / n_body
    if spare:
        why["model.preset"] = (f"{n_body / 1e6:.2f}M non-embedding parameters ({n_params / 1e6:.2f}M in all): the "
                               f"largest preset that --hours {request.hours:g} still lets see the {train_tokens:,} "
                               f"tokens {MAX_USEFUL_EPOCHS} times ({train_tokens * MAX_USEFUL_EPOCHS / n_body:.2g} "
                               f"tokens per parameter, >= {SPARE_TOKENS_PER_PARAM:g}): with time to spare, a larger "
                               "model under the weight decay below learns more from the same passes")

    time_epochs = _epochs_in_time(request, cfg, machine, context, train_tokens, measured, speed_factor[0])
    goal_epochs = _goal_epochs(goal, train_tokens, machine)
    passes = request.epochs or time_epochs or goal_epochs
    if "model.preset" not in why:
        per_param = passes * train_tokens / n_body  # the numbers of this plan (a small corpus gets more passes)
        why["model.preset"] = (f"{n_body / 1e6:.2f}M non-embedding parameters ({n_params / 1e6:.2f}M in all): " + (
            f"the largest preset with >= {goal['tokens_per_param']:g} tokens seen per parameter that fits "
            f"{machine.name} ({per_param:.2g} over ~{passes:.2g} passes of {train_tokens:,} tokens)"
            if chosen_seen / n_body >= goal["tokens_per_param"] else
            f"the smallest preset plans choose; it sees only {per_param:.2g} tokens per parameter over "
            f"~{passes:.2g} passes of {train_tokens:,} tokens, under the >= {goal['tokens_per_param']:g} that goal "
            f"{request.goal} wants"))
    repeats = passes > FRESH_PASSES
    dropout = DROPOUT if repeats and unique_ratio < DROPOUT_BELOW else 0.0
    why["model.dropout"] = (f"{unique_ratio:.2g} unique training tokens per parameter: "
                            + ("strong regularisation against memorising text repeated many times" if dropout else
                               f"~{passes:.2g} passes, and up to {FRESH_PASSES} a repeated text is nearly as good as "
                               "new: dropout would only slow learning" if not repeats else
                               "the weight decay regularises; dropout would only slow learning"))

    # epochs: a requested number, as many as --hours fills (up to MAX_USEFUL_EPOCHS), or the goal's
    epochs = request.epochs or time_epochs or goal_epochs
    if time_epochs and not request.epochs:
        why["train.epochs"] = (f"at most {MAX_USEFUL_EPOCHS} (more repeats of the same text teach nothing new; "
                               f"Muennighoff et al. 2023): train.minutes ends the run, after ~{epochs:.2f} passes "
                               f"on {machine.name} by this estimate")
    elif request.epochs:
        why["train.epochs"] = "as you asked"
        if request.epochs > 8:
            warnings.append(f"{request.epochs:g} epochs: each pass over the same text teaches less (past ~4 "
                            "passes returns fall, past ~16 they vanish; Muennighoff et al. 2023); early "
                            "stopping will likely end the run sooner — dropout is set for it")
    elif goal_epochs > goal["epochs"]:
        why["train.epochs"] = (f"{goal_epochs:g}: a small corpus needs more passes than goal {request.goal}'s "
                               f"{goal['epochs']:g} to give the schedule ~{MIN_LEARNING_STEPS} steps (dropout and "
                               "early stopping keep it from memorising)")
    else:
        why["train.epochs"] = {"fast": "one pass: the cheapest useful run",
                               "balanced": "up to 4 passes: repeated text is nearly as good as new up to ~4",
                               "best": "up to 10 passes with dropout; early stopping ends it when validation "
                                       "loss stops improving"}[request.goal]

    global_tokens = _global_batch_tokens(train_tokens * epochs, goal["min_steps"], machine)
    global_batch = max(1, global_tokens // context)
    micro, checkpointing = _micro_batch(cfg, machine, limit, max(1, global_batch // request.nproc))
    accum = max(1, global_batch // (micro * request.nproc))
    global_batch = micro * accum * request.nproc
    cfg = replace(cfg, dropout=dropout, activation_checkpointing=checkpointing)
    memory = estimate_training_memory(cfg, micro, precision=machine.precision, grad_accum_steps=accum,
                                      device_kind=machine.kind, device_memory=machine.memory_bytes, averaged=True)
    why["train.micro_batch_size"] = (f"the largest power of two whose peak (~{device_bytes(memory.peak, machine.kind) / GiB:.2f} GB) "
                                     f"fits the {limit / GiB:.1f} GB usable on {machine.name}, within the global batch")
    why["train.grad_accum_steps"] = ""  # filled in below, once the steps are known (keeps the order of reasons)
    why["model.activation_checkpointing"] = ("needed: not even micro-batch 1 fits otherwise (~30 % slower)"
                                             if checkpointing else "not needed: memory suffices without it")

    # time: measured tokens/s, else the card's FLOP/s at a realistic utilisation
    tokens_per_s = _tokens_per_s(cfg, machine, context, measured, speed_factor[0])
    if request.nproc > 1:  # data parallel: ~90 % scaling per added device (gradient all-reduce)
        tokens_per_s *= request.nproc * 0.9
    steps = full_steps = max(1, math.ceil(epochs * train_tokens / (global_batch * context)))
    hours = _hours(steps, global_batch * context, tokens_per_s, cfg, micro)
    if request.hours and hours > request.hours:
        steps = max(1, int(steps * request.hours / hours))  # too few to learn: refused below, saying why
        epochs = steps * global_batch * context / train_tokens
        if not time_epochs:
            why["train.epochs"] = f"{epochs:.2f}: as many passes as --hours {request.hours:g} allows"
        hours = _hours(steps, global_batch * context, tokens_per_s, cfg, micro)
    if steps < MIN_LEARNING_STEPS // 3:
        too_few = (f"{facts.name}: this plan gives only ~{steps} optimizer steps ({train_tokens:,} training tokens, "
                   f"{epochs:.2g} passes, batch {global_batch * context:,} tokens): too few to learn more than word "
                   "frequencies.")
        text_steps = math.ceil(MAX_USEFUL_EPOCHS * train_tokens / (global_batch * context))
        if request.hours and (steps < full_steps or (time_epochs and not request.epochs)) and steps < text_steps:
            needed = _hours(MIN_LEARNING_STEPS, global_batch * context, tokens_per_s, cfg, micro)  # time limits
            raise ConfigError(f"{too_few} The time is the limit: --hours {request.hours:g} buys ~{steps} steps at "
                              f"~{tokens_per_s:,.0f} tokens/s on {machine.name}; --hours {needed:.2g} buys "
                              f"~{MIN_LEARNING_STEPS}, or use a faster device")
        needed_tokens = (MIN_LEARNING_STEPS // 3) * global_batch * context / epochs / (1 - request.val_fraction)
        raise CorpusError(f"{too_few} The text is the limit: add text (at least ~"
                          f"{_count_text(needed_tokens * facts.chars_per_token)} characters in all, against "
                          f"{_count_text(facts.chars)} now)")
    aim = (f"aiming at >= {goal['min_steps']:,} steps for the schedule" if full_steps >= goal["min_steps"] else
           f"a small batch for a small corpus: the goal's {goal['min_steps']:,} steps are out of reach, "
           f"so ~{full_steps:,} steps")
    why["train.grad_accum_steps"] = (f"global batch {global_batch} sequences = {global_batch * context:,} tokens "
                                     f"per step{f' over {request.nproc} processes' if request.nproc > 1 else ''}: "
                                     f"{aim}")

    lr_note = "from the range test (--lr-test)" if measured_lr else "by model size (3e-3 at 1M parameters, ~N^-0.3)"
    from lunalm.train.schedule import default_lr, default_warmup

    lr = float(f"{measured_lr or default_lr(n_params):.3g}")
    muon = resolve_optimizer(TrainConfig(), machine.kind, passes=passes) == "muon"  # what auto will run
    weight_decay = weight_decay_for(lr, steps, passes, MUON_LR_SCALE if muon else 1.0)
    warmup = default_warmup(steps)
    eval_every, eval_batches = _eval_schedule(steps, accum)
    val_batches = int(facts.tokens * request.val_fraction) // (micro * (context + 1))
    eval_batches = max(2, min(eval_batches, val_batches))
    train_cfg = TrainConfig(
        minutes=round(request.hours * 60, 3) if request.hours else None,
        epochs=MAX_USEFUL_EPOCHS if time_epochs and not request.epochs else round(epochs, 3),  # minutes bind first
        micro_batch_size=micro, grad_accum_steps=accum, lr=lr, weight_decay=weight_decay,
        warmup_steps=None if request.hours else warmup, eval_every=eval_every, eval_batches=eval_batches, sample_every=eval_every * 5,
        checkpoint_every=eval_every * 2, patience=goal["patience"],
        compile=machine.kind == "cuda" and steps >= 1000)
    why["train.lr"] = f"peak learning rate {lr_note}; held, then a linear decay to 10 % over the last 30 % of the steps"
    why["train.optimizer"] = (
        f"Muon on the blocks' matrices, AdamW on the rest, both at {MUON_LR_SCALE:g}x the lr below (auto on a CPU "
        f"for at most {MUON_MAX_PASSES} passes): 2 % lower held-out bits/byte than AdamW on the 3-minute "
        "speeches plan, 5 % on Azerbaijani lyrics, for ~10 % more time a step" if muon else
        f"AdamW (auto): ~{passes:.0f} passes, where Muon memorised faster (3.7 % worse on the 15-minute "
        "speeches plan)" if machine.kind == "cpu" else
        "AdamW (auto off a CPU): Muon is not measured on GPUs with this recipe")
    window = 1 / (lr * (MUON_LR_SCALE if muon else 1) * weight_decay)  # Muon steps, and so decays, faster
    at_muon_lr = f" at Muon's {MUON_LR_SCALE:g}x lr" if muon else ""
    why["train.weight_decay"] = (
        f"weights averaged over ~{window:,.0f} steps (1 / (lr x decay){at_muon_lr}), "
        f"{window / steps:.0%} of the ~{steps:,}: regularises text seen more than {FRESH_PASSES} times"
        if repeats else
        f"the usual 0.1: text seen at most ~{FRESH_PASSES} times needs no more")
    why["train.schedule"] = ("warmup-stable-decay: 1.5 % lower held-out bits/byte than cosine on the 3-minute speeches "
                             "plan (bench_recipe)")
    why["train.ema_horizon"] = ("evaluate and keep an average of the weights over the last ~7 % of the steps: what early "
                                "stopping picks from is smoother and better than the raw weights")
    why["train.warmup_steps"] = ("5 % of the steps the run times at its start (at most 1,000)" if request.hours
                                 else "5 % of the steps (at most 1,000)")
    why["train.eval_every"] = (f"{max(1, steps // eval_every)} validation passes over ~{steps:,} steps: enough "
                               "points for the curve and early stopping")
    why["train.eval_batches"] = "validation costs at most ~10 % of the training time"
    why["train.sample_every"] = "samples at every 5th evaluation"
    why["train.checkpoint_every"] = "a resumable checkpoint every second evaluation"
    why["train.patience"] = f"stop after {goal['patience']} evaluations without a new best validation loss"
    why["train.precision"] = _precision_reason(machine)
    why["train.compile"] = ("torch.compile: ~1 minute to compile pays back over a long GPU run"
                            if train_cfg.compile else "off: not worth its start-up cost here")
    why["tokenizer.vocab_size"] = (f"{facts.vocab_size:,} tokens for {_count_text(facts.chars)} characters: every "
                                   "row of the embedding seen often enough to learn")
    config = RunConfig(
        corpus=corpus, tokenizer=replace(tokenizer, vocab_size=tokenizer.vocab_size or (
            facts.vocab_size if tokenizer.kind == "bpe" else None)),
        data=DataConfig(context_length=context, val_fraction=request.val_fraction),
        model=ModelChoice(preset=preset, dropout=dropout, activation_checkpointing=checkpointing),
        train=train_cfg)
    plan = Plan(config=config, machine=machine, facts=facts, model=cfg, memory=memory, memory_limit=limit,
                why=why, warnings=warnings)
    plan.estimates = _estimates(plan, steps, hours, tokens_per_s, measured is not None)
    if speed_factor[1] and not measured:
        plan.estimates["tokens_per_s_source"] += (f", corrected x{speed_factor[0]:.2f} from {speed_factor[1]} "
                                                  "past run(s) on this device")
    plan.config = replace(config, plan={
        "goal": request.goal, "device": machine.name, "device_kind": machine.kind,
        **{k: plan.estimates[k] for k in ("steps", "hours", "tokens_per_s", "tokens_per_s_source",
                                          "peak_memory_bytes")},
        **_corpus_size(corpus)})
    plan.fallbacks = _fallbacks(plan)
    if machine.kind == "cpu" and facts.chars < COMPRESSOR_WINS_BELOW:
        warnings.append(f"a compressor will likely predict this text better than any model trained here: on every "
                        f"corpus under ~{COMPRESSOR_WINS_BELOW / 1e6:g}M characters that this project measured, PPMd "
                        "conditioned on the training text beat the CPU model on held-out bits/byte (0.3 MB of "
                        "speeches 1.90 against 1.98, 0.3 MB of Turkish poems 2.34 against 2.40, Fuzuli's divan "
                        "1.98 against 2.13). The model still writes new text, which a compressor cannot; the run's "
                        "summary puts both scores side by side")
    if unique_ratio < 1 and not request.preset and repeats:  # seen fewer times, the time is the limit
        size = ("a size chosen to use the time the text leaves spare" if spare else
                "even at the smallest sensible size")
        handled = "early stopping, weight decay and dropout" if dropout else "early stopping and weight decay"
        warnings.append(f"small corpus: {train_tokens:,} training tokens for {n_body / 1e6:.2f}M "
                        f"non-embedding parameters, {size}; overfitting will be the "
                        f"limit ({handled} handle it) and more text would help more than any setting")
    return plan


# --- rules ---------------------------------------------------------------------------------------


def _epochs_in_time(request: Request, cfg: ModelConfig, machine: Machine, context: int, train_tokens: int,
                    measured: tuple[ModelConfig, float] | None, speed: float) -> float | None:
    """Passes over the training tokens that ``--hours`` buys on this machine (at most MAX_USEFUL_EPOCHS);
    None without --hours. The run itself then trains for exactly the time (train.minutes)."""
    if not request.hours:
        return None
    tokens = _tokens_in_time(request, cfg, machine, context, measured, speed)
    return round(min(MAX_USEFUL_EPOCHS, max(tokens / max(1, train_tokens), 0.01)), 3)


def _tokens_in_time(request: Request, cfg: ModelConfig, machine: Machine, context: int,
                    measured: tuple[ModelConfig, float] | None, speed: float) -> float:
    """Training tokens this model processes in ``--hours`` (~10 % of the time goes to evaluation)."""
    tokens_per_s = _tokens_per_s(cfg, machine, context, measured, speed)
    return tokens_per_s * (0.9 * request.nproc if request.nproc > 1 else 1) * request.hours * 3600 * 0.9


def _context_for(facts: CorpusFacts, machine: Machine) -> int:
    """A typical document, 128..1024 tokens; 128 on a CPU, where a shorter window buys more optimizer steps
    in the same time (bench/bench_quality.py: held-out 1.574 bits/byte at context 128 and 1,024-token
    batches against 1.721 at 256 and 4,096, same CPU time)."""
    target = 2 ** math.ceil(math.log2(max(1, facts.median_doc_tokens)))
    return min(CPU_CONTEXT if machine.kind == "cpu" else 1024, max(128, target))


def _goal_epochs(goal: dict, train_tokens: int, machine: Machine) -> float:
    """The goal's passes, raised (up to MAX_USEFUL_EPOCHS) until the run gets ~MIN_LEARNING_STEPS steps at
    the smallest usual batch: a 100-step run ends at word frequencies (unigram level), whatever the epochs."""
    floor = _batch_floor(machine)
    if train_tokens * goal["epochs"] / floor >= MIN_LEARNING_STEPS:
        return goal["epochs"]
    return float(min(MAX_USEFUL_EPOCHS, math.ceil(MIN_LEARNING_STEPS * floor / max(1, train_tokens))))


def _batch_floor(machine: Machine) -> int:
    """The smallest usual global batch in tokens: a GPU needs large ones to be busy; on a CPU 16 windows of
    128. Eight windows gave twice the steps but a third fewer tokens a second (a step's fixed costs: the
    optimizer, Muon's orthogonalisation; 9,028 against 14,196 tokens/s on the novels plan), and at equal
    time the 3-minute plans of three unseen corpora scored worse held-out bits/byte at 8 x 128 than at
    16 x 128 (Turkish news 1.7809 against 1.6990, English novels 1.5919 against 1.5131, Turkish articles
    1.0810 against 1.0317; bench_quality --dir); the small corpus, which reaches its 16 passes either way,
    scored the same (2.0023 and 1.9980)."""
    return 8192 if machine.kind != "cpu" else 2048


def _global_batch_tokens(tokens_seen: float, min_steps: int, machine: Machine) -> int:
    """A power of two: enough steps for the goal, at least the device's usual floor, and below that floor
    (down to 512 tokens) only when even MAX_USEFUL_EPOCHS would leave fewer than MIN_LEARNING_STEPS steps."""
    low = _batch_floor(machine)
    if tokens_seen / low < MIN_LEARNING_STEPS:
        low = max(512, 2 ** math.floor(math.log2(max(1.0, tokens_seen / MIN_LEARNING_STEPS))))
    target = max(low, tokens_seen / min_steps)
    return int(min(524_288, 2 ** math.floor(math.log2(target))))


def _fits(cfg: ModelConfig, micro: int, machine: Machine, limit: int) -> bool:
    peak = estimate_training_memory(cfg, micro, precision=machine.precision, grad_accum_steps=2,
                                  device_kind=machine.kind, device_memory=machine.memory_bytes, averaged=True).peak
    return device_bytes(peak, machine.kind) <= limit


def _batch_that_fits(cfg: ModelConfig, machine: Machine, limit: int) -> tuple[bool, int, bool]:
    for checkpointing in (False, True):
        c = replace(cfg, activation_checkpointing=checkpointing)
        if _fits(c, 1, machine, limit):
            return True, 1, checkpointing
    return False, 0, False


def _micro_batch(cfg: ModelConfig, machine: Machine, limit: int, global_batch: int) -> tuple[int, bool]:
    for checkpointing in (False, True):
        c = replace(cfg, activation_checkpointing=checkpointing)
        micro = 0
        candidate = 1
        while candidate <= min(global_batch, 256) and _fits(c, candidate, machine, limit):
            micro = candidate
            candidate *= 2
        if micro:
            return micro, checkpointing
    raise ConfigError(f"{machine.name}: the model does not fit even at micro-batch 1 with activation "
                      "checkpointing; choose a smaller --preset or --context")


def _largest_fitting(train_tokens, vocab, context, machine, limit, goal) -> str:
    best = "nano"
    for name in AUTO_PRESETS:
        cfg = model_config_from_preset(name, vocab, context)
        if (train_tokens * goal["epochs"] / count_parameters(cfg, non_embedding=True) >= goal["tokens_per_param"]
                and _batch_that_fits(cfg, machine, limit)[0]):
            best = name
    return best


def _tokens_per_s(cfg: ModelConfig, machine: Machine, context: int, measured: tuple[ModelConfig, float] | None,
                  speed: float) -> float:
    """A probe's tokens/s, scaled by FLOPs per token when it timed another shape; else the table's guess
    corrected by past runs' ``speed``."""
    if measured:
        probed, tokens_per_s = measured
        return tokens_per_s * flops_per_token(probed, probed.context_length) / flops_per_token(cfg, context)
    return _expected_tokens_per_s(cfg, machine, context) * speed


def _expected_tokens_per_s(cfg: ModelConfig, machine: Machine, context: int) -> float:
    # Small models keep a GPU busy with launches, not math: utilisation falls off below ~100M params.
    size_factor = min(1.0, (count_parameters(cfg) / 1e8) ** 0.3) if machine.kind != "cpu" else 1.0
    return machine.peak_flops * machine.mfu * size_factor / flops_per_token(cfg, context)


def _precision_reason(machine: Machine) -> str:
    if machine.kind == "cpu":
        return ("bf16 (auto): this CPU multiplies bf16 natively (AVX-512 BF16 or AMX): ~1.27x faster steps, the "
                "same held-out bits/byte" if machine.precision == "bf16" else
                "fp32: this CPU has no native bf16 (AVX-512 BF16 or AMX), and emulated half precision is slower")
    return {"fp32": "fp32: this device gains nothing from half precision",
            "bf16": "bf16 (auto): this card computes it natively, no loss scaling",
            "fp16": "fp16 with loss scaling (auto): no bf16 on this card"}[machine.precision]


def _count_text(count: float) -> str:
    """``"51,660"`` below a million, else ``"1.4M"``: a count as a person reads it."""
    return f"{count:,.0f}" if count < 1e6 else f"{count / 1e6:.1f}M"


def duration_text(hours: float) -> str:
    """``"45 s"``, ``"1.4 min"``, ``"12 min"`` or ``"3.5 h"``: a run time as a person reads it (the plan's
    estimates and the end-of-run summary)."""
    if hours < 1 / 60:
        return f"{max(1.0, hours * 3600):.0f} s"
    if hours < 1:
        return f"{hours * 60:.1f} min" if hours < 10 / 60 else f"{hours * 60:.0f} min"
    return f"{hours:.1f} h"


def _hours(steps: int, tokens_per_step: int, tokens_per_s: float, cfg: ModelConfig, micro: int) -> float:
    train = steps * tokens_per_step / tokens_per_s
    eval_every, batches = _eval_schedule(steps, tokens_per_step // (micro * cfg.context_length))
    evaluation = (steps / eval_every + 1) * batches * micro * cfg.context_length / (3 * tokens_per_s)  # forward: ~1/3
    return (train + evaluation) / 3600


def _eval_schedule(steps: int, micro_batches_per_step: int) -> tuple[int, int]:
    """(eval_every, eval_batches): ~20 validation passes, each costing <= ~10 % of the steps between them.
    A validation batch costs ~0.45 of a training micro-batch, not the 1/3 of a forward alone (nano on the
    3-minute Azerbaijani lyrics plan, 2 CPU threads: 15 batches took 1.0 s a pass against 150 ms a step,
    11.5 % of the loop at 0.3 batches per step between passes; 0.2 keeps it under 10 %)."""
    eval_every = max(10, _round_nice(steps / 20))
    return eval_every, max(2, min(50, int(0.2 * eval_every * micro_batches_per_step)))


def weight_decay_for(lr: float, steps: int, passes: float, lr_scale: float = 1.0) -> float:
    """The usual 0.1 for a run that sees its text at most FRESH_PASSES times; else decoupled decay whose
    averaging window 1 / (lr * lr_scale * decay) is DECAY_WINDOW of the run (MUON_DECAY_WINDOW for an
    optimizer stepping at lr_scale x the lr: Muon), at least 0.1 (a plan has >= 100 steps, so lr x decay
    stays <= 0.03). Plans and `luna train` without a config (train.weight_decay: null) use it."""
    if passes <= FRESH_PASSES:
        return TrainConfig.weight_decay
    share = DECAY_WINDOW if lr_scale == 1 else MUON_DECAY_WINDOW
    return round(max(TrainConfig.weight_decay, 1 / (lr * lr_scale * max(1, steps) * share)), 2)


def _round_nice(value: float) -> int:
    """10, 20, 25, 50, 100, 200, 250, 500, ... nearest below ``value``."""
    if value < 10:
        return 10
    scale = 10 ** math.floor(math.log10(value))
    for step in (5, 2.5, 2, 1):
        if value >= step * scale:
            return int(step * scale)
    return int(scale)


def _estimates(plan: Plan, steps: int, hours: float, tokens_per_s: float, measured: bool) -> dict:
    train = plan.config.train
    n_params = count_parameters(plan.model)
    step_checkpoint = 12 * n_params + 64 * 1024  # weights + AdamW moments + state files
    disk = (train.keep_checkpoints * step_checkpoint + 2 * 4 * n_params  # step ckpts, best/, final/
            + 2 * plan.facts.tokens)  # uint16 token shards
    return {
        "steps": steps,
        "tokens": steps * train.micro_batch_size * train.grad_accum_steps * plan.config.data.context_length,
        "tokens_per_s": round(tokens_per_s),
        "tokens_per_s_source": "probe (measured)" if measured else f"{plan.machine.name} peak x utilisation",
        "hours": round(hours, 3),
        "peak_memory_bytes": device_bytes(plan.memory.peak, plan.machine.kind),
        "memory_limit_bytes": plan.memory_limit,
        "disk_bytes": disk,
        "expected_val_loss": None,  # needs past runs on similar data: the run registry
        "prepare_seconds": plan.facts.prepare_seconds,  # before the first step, unless cached (a run before)
    }


def _corpus_size(corpus: CorpusConfig) -> dict:
    """``{"corpus_bytes": N}``, the size of the files planned for: ``luna train`` warns when it has changed
    much since (the plan was made for other text); {} for the built-in corpus or files not found."""
    from lunalm.corpus import Corpus

    try:
        return {"corpus_bytes": Corpus(corpus).bytes} if corpus.paths else {}
    except (CorpusError, OSError):
        return {}


def _fallbacks(plan: Plan) -> dict[str, list[str]]:
    t, m, d = plan.config.train, plan.config.model, plan.config.data
    kind = plan.machine.kind
    half = estimate_training_memory(plan.model, max(1, t.micro_batch_size // 2), precision=plan.machine.precision,
                                    grad_accum_steps=2, device_kind=kind, device_memory=plan.machine.memory_bytes, averaged=True).peak
    ckpt = estimate_training_memory(replace(plan.model, activation_checkpointing=True), t.micro_batch_size,
                                    precision=plan.machine.precision, grad_accum_steps=2, device_kind=kind, device_memory=plan.machine.memory_bytes, averaged=True).peak
    now = device_bytes(plan.memory.peak, kind) / GiB
    out = {"if memory runs out": [
        f"train.micro_batch_size: {max(1, t.micro_batch_size // 2)} and train.grad_accum_steps: "
        f"{t.grad_accum_steps * 2} — same global batch and results, peak {now:.2f} -> "
        f"{device_bytes(half, kind) / GiB:.2f} GB, ~10 % slower (lunalm also does this by itself on a CUDA OOM)",
    ]}
    if not m.activation_checkpointing:
        out["if memory runs out"].append(
            f"model.activation_checkpointing: true — peak -> {device_bytes(ckpt, kind) / GiB:.2f} GB, "
            "~30 % slower (each block's forward runs twice)")
    if d.context_length > 128:
        out["if memory runs out"].append(f"data.context_length: {d.context_length // 2} — activations halve; "
                                         "the model sees less text at once")
    hours = plan.estimates["hours"]
    train_tokens = max(1, int(plan.facts.tokens * (1 - d.val_fraction)))
    passes = plan.estimates["tokens"] / train_tokens  # what this plan's steps make, under --hours too
    faster = [f"train.epochs: 1 — ~{duration_text(hours / passes)} instead of ~{duration_text(hours)}; "
              "each text seen once"
              if passes > 1.5 else "a smaller model.preset: time scales with parameters"]
    if kind == "cuda" and not t.compile:
        faster.append("train.compile: true — ~1.3x faster steps after a ~1 minute compile")
    if kind == "cpu":
        faster.append("a GPU: even a 4 GB GTX 1650 trains this ~10-30x faster than a laptop CPU")
    better = ["more text: the single most effective change" + (
        " for a small corpus" if train_tokens < count_parameters(plan.model, non_embedding=True) else "")]
    if passes >= MAX_USEFUL_EPOCHS * 0.95:
        better.append(f"not more time: the plan already shows the model its text ~{passes:.0f} times "
                      "(more repeats teach nothing new)")
    elif t.minutes:  # first where the time, not the text, is what the run lacks most
        more = min(MAX_USEFUL_EPOCHS, 2 * passes)
        better.insert(0 if passes < FRESH_PASSES else 1,
                      f"--hours {2 * t.minutes / 60:g}: ~{more:.2g} passes over the text instead of ~{passes:.2g}")
    elif (plan.config.plan or {}).get("goal") != "best" and passes < GOALS["best"]["epochs"]:
        better.append(f"--goal best: up to {GOALS['best']['epochs']:g} epochs with dropout and early stopping "
                      f"(~{GOALS['best']['epochs'] / passes:.1f}x the time)")
    return {**out, "if you want it faster": faster, "if you want it better": better}
