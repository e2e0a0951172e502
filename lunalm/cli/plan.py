"""``luna plan``: choose the machine, read the corpus, plan, optionally measure, print, write YAML."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from datetime import datetime
from pathlib import Path

from lunalm.errors import ConfigError


def run_plan(args) -> int:
    from tqdm import tqdm

    from lunalm.cli import _corpus_config
    from lunalm.config import TokenizerConfig
    from lunalm.corpus.discover import unread_notes
    from lunalm.plan.history import speed_correction
    from lunalm.plan.recommend import Request, corpus_facts, make_plan

    machine, local = choose_machine(args)
    if args.probe and args.no_probe:
        raise ConfigError("--probe contradicts --no-probe: keep one of them")
    if Path(args.out).is_dir():  # checked before minutes of reading and probing, not after
        raise ConfigError(f"--out {args.out}: is a folder; give the config file's name, e.g. "
                          f"--out {Path(args.out) / 'plan.yaml'}")
    if (args.probe or args.lr_test) and not local:
        raise ConfigError(f"--probe/--lr-test measure this machine; they cannot measure {machine.name}, "
                          "which is not here. Leave them out (tables are used) or run the plan on that machine")
    corpus = _corpus_config(args, filtered=True)
    kind = "pretrained" if args.tokenizer_path else args.tokenizer
    tokenizer = TokenizerConfig(kind=kind, vocab_size=args.vocab_size, path=args.tokenizer_path)
    request = Request(goal=args.goal, hours=args.hours, preset=args.preset, epochs=args.epochs,
                      context_length=args.context, nproc=args.nproc)
    _check_request(args)
    say = (lambda text: None) if args.json else (lambda text: print(text, file=sys.stderr))
    say(f"reading {'the built-in corpus' if not corpus.paths else ', '.join(corpus.paths)} ...")
    for note in unread_notes(corpus.paths, corpus.include, corpus.exclude):
        say(f"note: {note}")
    with tqdm(unit="B", unit_scale=True, desc="reading", file=sys.stderr, leave=False,
              disable=args.json or not sys.stderr.isatty()) as bar:
        facts, sample_ids = corpus_facts(corpus, tokenizer, progress=bar)
    history = _history(args)
    speed = speed_correction(history, machine.name)
    plan = make_plan(facts, machine, request, corpus=corpus, tokenizer=tokenizer, speed_factor=speed)
    probe = None
    if args.probe or (args.hours and local and machine.kind == "cpu" and not args.no_probe):
        say(f"probing {machine.name}: a few real training steps ...")
        plan, probe = _probe(plan, facts, machine, request, corpus, tokenizer)
    if args.lr_test:
        say("learning-rate range test ...")
        plan = _lr_test(plan, facts, sample_ids, machine, request, corpus, tokenizer, probe)
    _expect(plan, history)
    write_yaml(plan, Path(args.out))
    if args.json:
        print(json.dumps(plan_json(plan, args.out), indent=2, ensure_ascii=False))
    else:
        print_plan(plan, args.out, explain=args.explain)
    return 0


def _history(args) -> list[dict]:
    """Past runs from the registry, when there is one (planning never needs it)."""
    from lunalm.runs.registry import Registry, default_path

    path = Path(args.registry) if args.registry else default_path(args.runs_dir)
    if not path.is_file():
        return []
    try:
        registry = Registry(path, create=False)
        return registry.find(source="lunalm")
    except Exception:  # noqa: BLE001 - a broken registry must not stop planning
        return []


def _expect(plan, history: list[dict]) -> None:
    from lunalm.model import count_parameters
    from lunalm.plan.history import expected_bits_per_byte

    found = expected_bits_per_byte(history, plan.facts.name, count_parameters(plan.model),
                                   plan.estimates["tokens"])
    if found:
        plan.estimates["expected_val_bpb"] = round(found[0], 4)
        plan.estimates["expected_val_bpb_from"] = found[1]


def choose_machine(args):
    """(Machine, whether it is this computer) from --device/--gpu/--vram; contradictions are errors."""
    from lunalm.plan.hardware import (GiB, available_ram, card_machine, cpu_machine, detect_cuda, find_card,
                                      parse_size, vram_machine, CARDS)

    vram = parse_size(args.vram) if args.vram else None
    if args.device == "cpu" and (args.gpu or args.vram):
        raise ConfigError("--device cpu contradicts --gpu/--vram: plan either for this CPU or for a GPU")
    if args.gpu:
        card = find_card(args.gpu)
        if args.device == "mps" and card.name != "Apple MPS":
            raise ConfigError(f"--device mps contradicts --gpu {args.gpu!r}")
        here = detect_cuda() if args.device != "mps" else None
        local = here is not None and here.card == card
        return card_machine(card, vram), local
    if args.device == "mps":
        card = next(c for c in CARDS if c.name == "Apple MPS")
        return card_machine(card, vram or int(available_ram() * 2 / 3)), True
    here = detect_cuda() if args.device in ("auto", "cuda") else None
    if args.device == "cuda" and here is None:
        raise ConfigError("--device cuda: PyTorch sees no CUDA GPU here; plan for one you will use with "
                          '--gpu NAME (e.g. --gpu "GTX 1650") or --vram SIZE')
    if here is not None:
        return (dataclasses.replace(here, memory_bytes=vram) if vram else here), True
    if vram:
        return vram_machine(vram), False
    return cpu_machine(), True


def _check_request(args) -> None:
    if args.nproc < 1:
        raise ConfigError(f"--nproc {args.nproc}: expected >= 1")
    if args.hours is not None and args.hours <= 0:
        raise ConfigError(f"--hours {args.hours}: expected a positive number of hours")
    if args.epochs is not None and args.epochs <= 0:
        raise ConfigError(f"--epochs {args.epochs}: expected > 0")
    if args.context is not None and not 8 <= args.context <= 131072:
        raise ConfigError(f"--context {args.context}: expected an integer in [8, 131072]")
    if args.tokenizer_path and args.tokenizer == "char":
        raise ConfigError("--tokenizer char contradicts --tokenizer-path (a pretrained tokenizer)")


PREPARE_SHOWN = 20  # seconds of tokenizer and token shards before training, from which the plan mentions them
PROBE_STEPS = 6  # timed steps, after warming up; their median is the step time


def _probe(plan, facts, machine, request, corpus, tokenizer):
    from lunalm.plan.probe import BUSY_SHARE, measure
    from lunalm.plan.recommend import make_plan

    device = "cuda" if machine.kind == "cuda" else "cpu"
    for _ in range(2):  # the table's shape, then once more if the measured speed chose another shape
        micro = plan.config.train.micro_batch_size
        result = measure(plan.model, micro, device=device, precision=machine.precision, steps=PROBE_STEPS)
        while result.oom and micro > 1:  # the table was optimistic: halve and measure again
            micro //= 2
            result = measure(plan.model, micro, device=device, precision=machine.precision, steps=PROBE_STEPS)
        if result.oom:
            raise ConfigError(f"{machine.name}: out of memory even at micro-batch 1 while probing; "
                              "choose a smaller --preset or --context")
        new = make_plan(facts, machine, request, corpus=corpus, tokenizer=tokenizer,
                        measured=(plan.model, result.tokens_per_s))
        probed, plan = (plan.model, micro), new
        if (new.model, new.config.train.micro_batch_size) == probed:
            break
    new.probe = dataclasses.asdict(result)
    new.probe["predicted_peak_bytes"] = new.estimates["peak_memory_bytes"]
    if result.busy_share > BUSY_SHARE:
        new.warnings.append(f"other programs kept ~{result.busy_share:.0%} of the CPU busy while the probe timed "
                            f"it: the plan's {new.estimates['steps']:,} steps and the choices made from them assume "
                            "that slower speed. The timing was not cached; plan again when the machine is idle")
    return new, result


def _lr_test(plan, facts, sample_ids, machine, request, corpus, tokenizer, probe):
    import numpy as np
    import torch

    from lunalm.plan.probe import lr_range_test
    from lunalm.plan.recommend import make_plan

    flat = np.fromiter((i for ids in sample_ids for i in ids), dtype=np.int64)
    T, B = plan.model.context_length, plan.config.train.micro_batch_size
    if len(flat) < (T + 1) * 2:
        raise ConfigError("--lr-test: the corpus sample is too short for one batch at this context")
    rng = np.random.default_rng(0)

    def batches():
        while True:
            starts = rng.integers(0, len(flat) - T - 1, size=B)
            window = torch.from_numpy(np.stack([flat[s:s + T + 1] for s in starts]))
            yield window[:, :-1], window[:, 1:]

    device = "cuda" if machine.kind == "cuda" else "cpu"
    found = lr_range_test(plan.model, B, batches(), device=device, precision=machine.precision)
    new = make_plan(facts, machine, request, corpus=corpus, tokenizer=tokenizer,
                    measured=(plan.model, probe.tokens_per_s) if probe else None,
                    measured_lr=found["suggested_lr"])
    new.probe = {**(plan.probe or {}), "lr_test": {k: v for k, v in found.items() if k not in ("lrs", "losses")}}
    return new


# --- output ---------------------------------------------------------------------------------------


def write_yaml(plan, path: Path) -> None:
    """The config ``luna train --config`` reads, each choice with its reason as a comment; atomic."""
    import yaml

    from lunalm.config import SECTIONS, run_config_to_dict

    values = run_config_to_dict(plan.config)
    lines = [f"# luna plan: {plan.facts.name} on {plan.machine.name} "
             f"({datetime.now().strftime('%Y-%m-%d %H:%M')})",
             f"# estimated {plan.estimates['hours']:.2f} h, {plan.estimates['steps']:,} steps, peak memory "
             f"~{plan.estimates['peak_memory_bytes'] / 2**30:.2f} GB",
             f"# train it with:  luna train --config {path}", ""]
    for key in ("name", "runs_dir"):
        lines.append(f"{key}: {_scalar(yaml, values[key])}")
    for section in SECTIONS:
        lines.append(f"{section}:")
        for field, value in values[section].items():
            reason = plan.why.get(f"{section}.{field}")
            line = f"  {field}: {_scalar(yaml, value)}"
            lines.append(f"{line}  # {reason}" if reason else line)
    lines.append("plan:  # the estimates, recorded beside what actually happens (luna runs show)")
    for key, value in values["plan"].items():
        lines.append(f"  {key}: {_scalar(yaml, value)}")
    text = "\n".join(lines) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"--out {path}: cannot write the config ({error.strerror}); choose another path") from None


def _scalar(yaml, value) -> str:
    if isinstance(value, (list, tuple)):
        value = list(value)
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**9)
    return text.split("\n...")[0].strip()


def plan_json(plan, out: str) -> dict:
    from lunalm.config import run_config_to_dict

    return {"config": run_config_to_dict(plan.config), "why": plan.why, "warnings": plan.warnings,
            "estimates": plan.estimates, "memory": dict(plan.memory.rows()), "fallbacks": plan.fallbacks,
            "machine": {"name": plan.machine.name, "kind": plan.machine.kind,
                        "memory_bytes": plan.machine.memory_bytes, "precision": plan.machine.precision},
            "corpus": dataclasses.asdict(plan.facts), "probe": plan.probe, "written": out}


def print_plan(plan, out: str, explain: bool = False) -> None:
    from lunalm.model import count_parameters
    from lunalm.plan.memory import device_bytes
    from lunalm.plan.recommend import duration_text

    f, m, e = plan.facts, plan.machine, plan.estimates
    cfg, t = plan.model, plan.config.train
    gb = 2**30
    about = "~" if f.read_share < 1 else ""
    print(f"corpus   {f.name}: {about}{f.documents:,} documents, {about}{f.chars / 1e6:.2f}M characters, "
          f"~{f.tokens:,} tokens ({f.chars_per_token:.2f} chars/token, {f.tokenizer_kind} vocab {f.vocab_size:,})"
          + (f"; estimated from {f.read_share * 100:.0f} % of its bytes, "
             + ("a spread of its files" if f.spread else "read from the start") if about else ""))
    print(f"machine  {m.name}: {m.memory_bytes / gb:.1f} GB, {m.precision}, "
          f"{plan.memory_limit / gb:.1f} GB usable for training")
    print(f"model    {plan.config.model.preset}: {count_parameters(cfg) / 1e6:.2f}M parameters "
          f"({count_parameters(cfg, non_embedding=True) / 1e6:.2f}M non-embedding), {cfg.n_layer} layers x "
          f"{cfg.d_model}, context {cfg.context_length}")
    print()
    width = max(len(k) for k in plan.why)
    values = {f"{s}.{k}": v for s in ("tokenizer", "data", "model", "train")
              for k, v in dataclasses.asdict(getattr(plan.config, s)).items()}
    for key, reason in plan.why.items():
        print(f"  {key:<{width}}  {values.get(key)!s:<8}  {reason}")
    print()
    print(f"estimate {e['steps']:,} steps, {e['tokens'] / 1e6:.1f}M tokens, ~{duration_text(e['hours'])} "
          f"at {e['tokens_per_s']:,} tokens/s ({e['tokens_per_s_source']})")
    if e.get("prepare_seconds", 0) >= PREPARE_SHOWN:
        print(f"         before it, ~{duration_text(e['prepare_seconds'] / 3600)} to learn the tokenizer and encode "
              "the corpus (once: later runs on it reuse the cache)")
    print(f"         peak memory ~{e['peak_memory_bytes'] / gb:.2f} GB of {e['memory_limit_bytes'] / gb:.1f} GB "
          f"usable; disk ~{e['disk_bytes'] / gb:.2f} GB for checkpoints and token shards")
    if e.get("expected_val_bpb"):
        print(f"         expected validation bits per byte ~{e['expected_val_bpb']:.3f} ({e['expected_val_bpb_from']})")
    else:
        print("         expected validation loss: no past runs on this corpus in the registry to fit it from yet")
    if plan.probe:
        p = plan.probe
        if p.get("peak_bytes"):
            print(f"probe    measured {p['tokens_per_s']:,.0f} tokens/s, peak {p['peak_bytes'] / gb:.2f} GB "
                  f"(memory model: {p['predicted_peak_bytes'] / gb:.2f} GB) at micro-batch {p['micro_batch_size']}")
        if "lr_test" in p:
            lr = p["lr_test"]
            print(f"lr test  loss fell fastest at {lr['steepest_lr']:.2g}, lowest at {lr['lr_at_min_loss']:.2g}: "
                  f"using {lr['suggested_lr']:.2g}")
    if explain:
        print()
        print(f"memory of one training step (micro-batch {t.micro_batch_size}, {m.precision}"
              f"{', activation checkpointing' if cfg.activation_checkpointing else ''}):")
        for name, value in plan.memory.rows():
            print(f"  {name:<32} {value / 2**20:>10,.1f} MiB")
        if m.kind == "cpu":
            print(f"  {'on CPU the process grows by':<32} {device_bytes(plan.memory.peak, 'cpu') / 2**20:>10,.1f} "
                  "MiB (heap and runtime overhead, measured)")
    for warning in plan.warnings:
        print(f"\nwarning: {warning}")
    print()
    for title, items in plan.fallbacks.items():
        print(f"{title}:")
        for item in items:
            print(f"  - {item}")
    print(f"\nwrote {out}; train it with:  luna train --config {out}")
