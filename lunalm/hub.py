"""Hugging Face Hub ids wherever a model, tokenizer or dataset is named, through the normal HF cache.

``snapshot(repo_id, ...)`` is ``huggingface_hub.snapshot_download``: the files land in (or are found in)
the cache that ``HF_HOME`` / ``HF_HUB_CACHE`` name, so a model downloaded once by transformers is not
downloaded again. With ``HF_HUB_OFFLINE=1`` only the cache is read; anything missing is one clear error
naming the id, the cache folder and how to fetch it. A local path always wins: a name is looked up on
the Hub only when no such file or folder exists.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lunalm.errors import LunaError

# owner/name or a bare name (GPT-2 era ids like "gpt2"); never a file name such as tokenizer.json
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
MODEL_FILES = ("*.json", "*.safetensors", "*.txt", "*.model", "*.jinja")  # config, weights, tokenizer
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "*.jinja")


def looks_like_hub_id(name: str) -> bool:
    return bool(_HUB_ID.match(name)) and not name.endswith((".json", ".txt", ".jsonl", ".yaml"))


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def snapshot(repo_id: str, *, flag: str, error: type[LunaError], repo_type: str = "model",
             patterns: tuple[str, ...] | None = None) -> Path:
    """The local snapshot folder of ``repo_id`` (downloaded into the HF cache unless offline)."""
    what = "dataset" if repo_type == "dataset" else "model"
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:
        raise error(f"{flag} {repo_id}: no such local path, and Hub ids need huggingface_hub: "
                    "pip install huggingface_hub") from None
    try:
        return Path(snapshot_download(repo_id, repo_type=repo_type,
                                      allow_patterns=list(patterns) if patterns else None))
    except LocalEntryNotFoundError:
        fetch = f"huggingface-cli download{' --repo-type dataset' if what == 'dataset' else ''} {repo_id}"
        reason = ("HF_HUB_OFFLINE=1 forbids downloading it; run once online, or `" + fetch + "`") if is_offline() \
            else "the Hub cannot be reached; check the network"
        raise error(f"{flag} {repo_id}: no such local path, and {what} {repo_id} is not in the Hugging Face "
                    f"cache ({cache_dir()}); {reason}") from None
    except (HfHubHTTPError, ValueError, OSError) as failure:
        raise error(f"{flag} {repo_id}: no such local path, and the Hub has no {what} {repo_id} we can fetch "
                    f"({str(failure).splitlines()[0]}); check the path or the owner/name") from None


def cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)
