"""The end of a run: how good the best model is on the validation documents, beside what a compressor
(PPMd) that learned the same training text scores on them (``lunalm.heldout`` has the method).

Both numbers are on the run's validation split: text that training never saw (whole documents, and the
last tenth of each long one: ``lunalm.data.shards``). The
compressor reads the training split's text (decoded from the token shards, so it is exactly the text
the model learned from) and codes the validation text conditioned on it.
"""

from __future__ import annotations

import numpy as np

from lunalm.heldout import (CODER_TRAIN_BYTES, first_documents, ppmd_bits_per_byte, score_documents,
                            split_documents)
from lunalm.train.setup import Run
from lunalm.train.state_dicts import sharded

MAX_HELDOUT_TOKENS = 1_000_000  # scored tokens at most (whole documents)
MIN_HELDOUT_TOKENS = 100_000  # ... and at least this many where the split has them: a figure good to ~1 %
# ... and at most this share of the tokens trained on. Scoring at a stride of half the context is ~2 forward
# passes a token against ~3 for a trained token, so the check costs at most ~1/6 of the training time: a
# 3-minute run on a 300 MB corpus waited a minute for 1M scored tokens after it ended.
HELDOUT_SHARE = 0.25
SUMMARY_PPMD_ORDERS = (5, 8, 12)  # a short list: the run summary should not wait on the compressor


def heldout_check(run: Run) -> dict | None:
    """{"bits_per_byte", "method", "documents", "tokens", "ppmd_bits_per_byte", "ppmd_order", ...} of the
    best weights on the validation documents; None without validation text or evaluation."""
    shards = run.data.shards
    if shards is None or shards.n_tokens("val") < 2 or run.token_bytes is None or sharded(run):
        return None
    eot = run.data.tokenizer.eot_id
    val = shards.split("val")
    limit = heldout_tokens(run.state.tokens_seen)
    head = val[: min(len(val), 2 * limit)]  # never the whole split of a large corpus in memory
    documents = split_documents(head, eot)
    if len(head) < len(val) and len(documents) > 1:
        documents = documents[:-1]  # the last one was cut by the slice
    documents = first_documents(documents, limit)
    if not documents:
        return None
    context = run.model.config.context_length
    score = score_documents(best_model(run), documents, run.token_bytes, context=context, stride=max(1, context // 2),
                            batch_size=run.state.micro_batch_size, device=run.hw.device,
                            autocast=run.hw.for_scoring().autocast)
    result = {"bits_per_byte": score.bits_per_byte, "loss": score.loss, "method": score.method,
              "documents": score.documents, "tokens": score.tokens, "bytes": score.bytes}
    heldout_text = _text(run, [t for document in documents for t in document])
    train_text = _text(run, _tail(shards.split("train"), CODER_TRAIN_BYTES, shards.bytes_per_token("train")))
    ppmd, order = ppmd_bits_per_byte(train_text, heldout_text, SUMMARY_PPMD_ORDERS)
    result.update(ppmd_bits_per_byte=ppmd, ppmd_order=order)
    return result


def heldout_tokens(tokens_trained: int) -> int:
    """How many validation tokens (whole documents) the end-of-run check scores."""
    return max(MIN_HELDOUT_TOKENS, min(MAX_HELDOUT_TOKENS, int(HELDOUT_SHARE * tokens_trained)))


def _tail(tokens, max_bytes: int, bytes_per_token: float):
    n = len(tokens)
    keep = min(n, int(max_bytes / max(bytes_per_token, 1e-9)))
    return tokens[n - keep:n]


def _text(run: Run, ids) -> bytes:
    """UTF-8 of token ids, documents separated by a blank line instead of the end-of-text token."""
    tokenizer = run.data.tokenizer
    ids = np.asarray(ids, dtype=np.int64)
    pieces, start = [], 0
    for cut in list(np.flatnonzero(ids == tokenizer.eot_id)) + [len(ids)]:
        if cut > start:
            pieces.append(tokenizer.decode(ids[start:cut].tolist(), skip_special_tokens=True))
        start = cut + 1
    return "\n\n".join(pieces).encode("utf-8")


def best_model(run: Run):
    """A copy of the model holding the best checkpoint's weights (``run.model`` itself stays the final
    one), or ``run.model`` when the last step was the best or no best/ exists."""
    import copy

    from safetensors.torch import load_file

    best = run.checkpoints / "best" / "model.safetensors"
    if run.state.best_step == run.state.step or not best.is_file() or run.config.finetune is not None:
        return run.model
    model = copy.deepcopy(run.model)
    result = model.load_state_dict(load_file(str(best), device=str(run.hw.device)), strict=False)
    assert set(result.missing_keys) <= {"lm_head.weight"} and not result.unexpected_keys, result  # tied head
    return model
