"""`luna plan`'s predictions against measurement: peak memory and step time of real training steps.

For each shape (preset x context x micro-batch) the memory model (``lunalm.plan.memory``) predicts the
peak, and the time model predicts seconds per step from the device's FLOP/s x utilisation
(``lunalm.plan.recommend``), exactly as ``luna plan`` does without ``--probe``. Then ``lunalm.plan.probe``
runs the training step for real (warm-up + ``--steps`` timed steps) in a fresh process:

* CPU: peak = growth of the process's peak resident set (VmHWM, reset after torch loads) — compared with
  the model's CPU prediction (tensor peak x heap factor + runtime bytes).
* CUDA (when a GPU is here): peak = ``torch.cuda.max_memory_allocated`` — compared with the tensor peak.

Ratio = predicted / measured; goal for memory: within 15 % (0.85..1.15). Time ratios are reported, not
judged: the table's FLOP/s are a guess by design, and ``luna plan --probe`` replaces them by the measurement.

    python bench/bench_plan.py                  # CPU shapes (~3 minutes on 2 cores)
    python bench/bench_plan.py --device cuda    # on a GPU machine
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from lunalm.model import model_config_from_preset  # noqa: E402
from lunalm.plan.hardware import cpu_machine, detect_cuda  # noqa: E402
from lunalm.plan.memory import device_bytes, estimate_training_memory  # noqa: E402
from lunalm.plan.probe import measure  # noqa: E402
from lunalm.plan.recommend import _expected_tokens_per_s  # noqa: E402

CPU_SHAPES = [("nano", 4096, 128, 32), ("nano", 4096, 256, 16), ("tiny", 8192, 256, 8),
              ("tiny", 8192, 512, 4), ("small", 8192, 256, 4)]
CUDA_SHAPES = [("tiny", 8192, 512, 32), ("small", 8192, 512, 16), ("small", 32000, 1024, 8),
               ("medium", 32000, 1024, 8), ("gpt2", 50304, 1024, 8)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--checkpointing", action="store_true", help="also each shape with activation checkpointing")
    args = parser.parse_args()
    machine = cpu_machine() if args.device == "cpu" else detect_cuda()
    if machine is None:
        sys.exit("no CUDA GPU here")
    rows = []
    for preset, vocab, context, batch in CPU_SHAPES if args.device == "cpu" else CUDA_SHAPES:
        for checkpointing in (False, True) if args.checkpointing else (False,):
            cfg = model_config_from_preset(preset, vocab, context, activation_checkpointing=checkpointing)
            tensor_peak = estimate_training_memory(cfg, batch, precision=machine.precision,
                                                   device_kind=machine.kind).peak
            predicted = device_bytes(tensor_peak, machine.kind)
            result = measure(cfg, batch, device=args.device, precision=machine.precision, steps=args.steps,
                             threads=args.threads, use_cache=False)
            predicted_step = batch * context / _expected_tokens_per_s(cfg, machine, context)
            rows.append({"shape": f"{preset} V{vocab} T{context} B{batch}{' ckpt' if checkpointing else ''}",
                         "predicted_mib": predicted / 2**20, "measured_mib": (result.peak_bytes or 0) / 2**20,
                         "mem_ratio": common.ratio(predicted, result.peak_bytes),
                         "predicted_s": predicted_step, "measured_s": result.step_seconds,
                         "time_ratio": common.ratio(predicted_step, result.step_seconds)})
            print(f"  {rows[-1]['shape']}: memory {rows[-1]['mem_ratio']:.3f}, time {rows[-1]['time_ratio']:.2f}",
                  flush=True)
    print()
    common.print_table(rows, [("shape", "shape", ""), ("predicted_mib", "predicted MiB", ",.0f"),
                              ("measured_mib", "measured MiB", ",.0f"), ("mem_ratio", "pred/meas", ".3f"),
                              ("predicted_s", "pred s/step", ".3f"), ("measured_s", "meas s/step", ".3f"),
                              ("time_ratio", "pred/meas", ".2f")])
    worst = max(abs(row["mem_ratio"] - 1) for row in rows if row["mem_ratio"])
    print(f"\nworst memory error {worst:.1%} (goal <= 15 %): {'meets goal' if worst <= 0.15 else 'misses goal'}")
    common.write_json("plan", {"device": machine.name, "rows": rows, "worst_memory_error": worst,
                               "goal": 0.15})


if __name__ == "__main__":
    main()
