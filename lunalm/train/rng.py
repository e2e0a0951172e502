"""The state of every random number generator a training step draws from, as values a step checkpoint can
hold (``torch.load(weights_only=True)`` loads them), and putting it back."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def rng_state() -> dict:
    """State of every RNG a training step draws from, as weights_only-safe values.

    numpy's global state is kept as a tensor plus plain numbers (its key array would not load with
    weights_only=True as an ndarray).
    """
    import random

    import torch

    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np
    except ImportError:
        return state
    kind, key, pos, has_gauss, cached = np.random.get_state()
    state["numpy"] = {"kind": str(kind), "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    return state


def restore_rng_state(state: dict) -> None:
    """Put back what :func:`rng_state` captured; parts absent from ``state`` are left alone."""
    import random

    import torch

    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        saved, present = len(state["cuda"]), torch.cuda.device_count()
        if saved != present:
            logger.warning("checkpoint has RNG state for %d CUDA devices, %d present", saved, present)
        for index, cuda_state in enumerate(state["cuda"][:present]):
            torch.cuda.set_rng_state(cuda_state.cpu(), index)
    if "numpy" in state:
        import numpy as np  # present whenever the state was captured with it

        saved = state["numpy"]
        np.random.set_state((saved["kind"], saved["key"].numpy().astype(np.uint32), saved["pos"],
                             saved["has_gauss"], saved["cached_gaussian"]))
