"""Generation speed: ``lunalm.generate.generate_ids`` (KV cache) vs ``transformers`` ``generate`` on the
same weights.

For each shape a lunalm model is initialised (seeded), written with ``lunalm.model.save_pretrained`` and
loaded back by ``transformers.AutoModelForCausalLM.from_pretrained`` (a ``LlamaForCausalLM``). Both then
decode greedily from the same prompt (encoded by the shared BPE tokenizer, vocab 8192) for exactly
``--new-tokens`` tokens (no stop token, HF ``min_new_tokens`` = ``max_new_tokens``), batch 1, in this
process with the same thread count. One untimed warm-up call each, then ``--repeats`` timed calls each,
interleaved; the best call counts (least disturbed by other load). Tokens/s = new tokens / wall seconds
of the whole call (prefill included). The greedy ids are compared as a check that both run the same
network. Goal: lunalm / transformers >= 1.

    python bench/bench_generate.py                         # nano and tiny, 200 new tokens
    python bench/bench_generate.py --shapes nano --repeats 2   # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import torch  # noqa: E402

GOAL = 1.0
PROMPT = "Türkiye Cumhuriyeti'nin temelleri atılırken milletimizin"


def build_pair(preset: str, vocab_size: int, context: int, directory: Path):
    """A seeded lunalm model and the same weights loaded by transformers."""
    from transformers import AutoModelForCausalLM

    from lunalm.model import LunaLM, model_config_from_preset, save_pretrained

    torch.manual_seed(0)
    model = LunaLM(model_config_from_preset(preset, vocab_size, context)).eval()
    save_pretrained(model, directory)
    hf_model = AutoModelForCausalLM.from_pretrained(directory).eval()
    return model, hf_model


def lunalm_call(model, prompt_ids: list[int], new_tokens: int):
    from lunalm.generate import SamplingConfig, generate_ids

    cfg = SamplingConfig(max_new_tokens=new_tokens, temperature=0.0)
    return lambda: generate_ids(model, prompt_ids, cfg, stop_id=None)


def hf_call(hf_model, prompt_ids: list[int], new_tokens: int):
    input_ids = torch.tensor([prompt_ids])  # (1, P)
    attention_mask = torch.ones_like(input_ids)

    def call() -> list[int]:
        with torch.inference_mode():
            out = hf_model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=new_tokens,
                                    min_new_tokens=new_tokens, do_sample=False, pad_token_id=0,
                                    eos_token_id=None)
        return out[0, input_ids.shape[1]:].tolist()

    return call


def timed(call) -> tuple[float, list[int]]:
    started = time.perf_counter()
    ids = call()
    return time.perf_counter() - started, ids


def run_shape(preset: str, prompt_ids: list[int], args, scratch: Path) -> list[dict]:
    model, hf_model = build_pair(preset, args.vocab, args.context, scratch / preset)
    calls = {"lunalm generate_ids": lunalm_call(model, prompt_ids, args.new_tokens),
             "transformers generate": hf_call(hf_model, prompt_ids, args.new_tokens)}
    outputs = {name: call() for name, call in calls.items()}  # warm-up, and the ids to compare
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(args.repeats):
        for name, call in calls.items():
            elapsed, ids = timed(call)
            assert len(ids) == args.new_tokens, f"{name} made {len(ids)} tokens, not {args.new_tokens}"
            seconds[name].append(elapsed)
    luna_ids, hf_ids = outputs.values()
    agree = next((i for i, (a, b) in enumerate(zip(luna_ids, hf_ids)) if a != b), len(luna_ids))
    rows = [{"shape": preset, "implementation": name, "best_tokens_per_s": args.new_tokens / min(values),
             "median_tokens_per_s": args.new_tokens / statistics.median(values), "seconds": values,
             "same_ids_for": agree} for name, values in seconds.items()]
    rows[0]["lunalm_over_hf"] = common.ratio(rows[0]["best_tokens_per_s"], rows[1]["best_tokens_per_s"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="nano,tiny", help="comma list of lunalm presets")
    parser.add_argument("--new-tokens", type=int, default=200, help="tokens generated per call")
    parser.add_argument("--context", type=int, default=512, help="model context length (prompt + new fit)")
    parser.add_argument("--vocab", type=int, default=8192, help="vocabulary (the shared BPE tokenizer's)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per implementation")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    tokenizer = common.bench_tokenizer("bpe", args.vocab)
    prompt_ids = tokenizer.encode(PROMPT)
    if len(prompt_ids) + args.new_tokens > args.context:
        sys.exit(f"prompt ({len(prompt_ids)}) + new tokens ({args.new_tokens}) exceed --context {args.context}")
    print(f"bench_generate: prompt of {len(prompt_ids)} tokens, {args.new_tokens} new tokens, greedy, batch 1, "
          f"{args.threads} threads", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for preset in args.shapes.split(","):
            rows += run_shape(preset, prompt_ids, args, Path(scratch))
    common.print_table(rows, [("shape", "shape", ""), ("implementation", "implementation", ""),
                              ("best_tokens_per_s", "tokens/s (best)", ",.1f"),
                              ("median_tokens_per_s", "tokens/s (median)", ",.1f"),
                              ("same_ids_for", "greedy ids equal for", ""),
                              ("lunalm_over_hf", "lunalm / HF", ".2f")])
    ratios = {row["shape"]: row["lunalm_over_hf"] for row in rows if "lunalm_over_hf" in row}
    for shape, value in ratios.items():
        print(f"{shape}: lunalm / transformers = {value:.2f} (goal >= {GOAL}: {common.verdict(value, GOAL)})")
    path = common.write_json("bench_generate", {"args": vars(args), "prompt": PROMPT, "rows": rows,
                                                "ratio_lunalm_over_hf": ratios, "goal": f">= {GOAL}"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
