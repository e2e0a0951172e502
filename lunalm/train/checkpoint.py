"""The one checkpoint writer and reader: a checkpoint counts only when it is complete (torchtitan's rule).

Layout of a checkpoint directory (``runs/<name>/checkpoints/step-000500/``, ``best/``, ``final/``)::

    config.json  model.safetensors     HF Llama format (lunalm.model.save_pretrained)
    tokenizer.json  tokenizer_config.json  special_tokens_map.json
    lunalm.json                        the caller's metadata: run config, step, metrics
    train_state.pt                     step checkpoints only: optimizer, schedule, sampler, RNG
                                       (tensors and plain values: loads with weights_only=True)
    manifest.json                      written last: size + sha256 of every other file

Why the dance in :func:`save_checkpoint`: everything is written into a hidden temporary directory next to
the target (same filesystem, so ``rename`` is atomic), fsynced, sealed by the manifest, and only then
renamed into place. A crash at any moment leaves either no new directory or a complete one. Replacing
``best/`` moves the old one aside first; if a crash strikes between the two renames,
:func:`recover_interrupted_writes` (run by the readers) moves it back, so the name never stays empty.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Callable

from lunalm.errors import DiskFullError, LunaError, is_disk_full
from lunalm.train.rng import restore_rng_state, rng_state  # noqa: F401 - part of the checkpoint's interface

logger = logging.getLogger(__name__)

FORMAT = "lunalm-checkpoint"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TRAIN_STATE = "train_state.pt"
META = "lunalm.json"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", META)
# Hidden siblings of checkpoint directories: ".tmp-<name>-<hex>" a write in progress, ".old-<name>-<hex>"
# a replaced checkpoint not yet deleted, ".del-<name>-<hex>" a pruned one being deleted.
TEMP_PREFIX, ASIDE_PREFIX, DELETE_PREFIX = ".tmp-", ".old-", ".del-"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl")
_STEP_DIR = re.compile(r"^step-(\d+)$")
_HIDDEN_DIR = re.compile(r"^(\.tmp-|\.old-|\.del-)(.+)-[0-9a-f]{8}$")


class CheckpointError(LunaError):
    """A checkpoint that is missing, incomplete, corrupt or in a format lunalm refuses to read."""


# --- writing -------------------------------------------------------------------------------------
def save_checkpoint(target: Path, model, tokenizer, meta: dict, train_state: dict | None = None,
                    model_state: dict | None = None) -> Path:
    """Write a complete checkpoint at ``target`` atomically (replacing one already there) and return it.

    ``model_state`` replaces ``model.state_dict()`` (the gathered full weights of a sharded model).
    ``meta`` must be JSON-serialisable; ``train_state`` may hold only tensors and plain Python values so
    that it loads with ``torch.load(weights_only=True)`` (checked before anything is written).
    """
    target = Path(target)
    if train_state is not None:
        _check_weights_only_safe(train_state, "train_state")
    meta_text = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"  # fails before any I/O if not JSON
    temp = hidden_sibling(target, TEMP_PREFIX)
    try:
        temp.mkdir(parents=True)
        _write_files(temp, model, tokenizer, meta_text, train_state, model_state)
        install_directory(temp, target)
    except BaseException as error:
        _remove_quietly(temp)
        if is_disk_full(error):  # torch, safetensors and plain writes each say it differently
            raise DiskFullError(target.parent, f"writing checkpoint {target.name}", "try again (the checkpoints "
                                "already there are intact)") from error
        if isinstance(error, OSError):
            raise CheckpointError(f"Could not write checkpoint {target} ({error}); make sure its folder is "
                                  "writable and has free space, then try again.") from error
        raise
    return target


def _write_files(directory: Path, model, tokenizer, meta_text: str, train_state: dict | None,
                 model_state: dict | None = None) -> None:
    """Every file of the checkpoint, fsynced, then the manifest that seals them."""
    import torch

    model.save_weights(directory, tokenizer, state=model_state)  # LunaLM, or a Hugging Face base's adapter
    tokenizer.save(directory)
    (directory / META).write_text(meta_text, encoding="utf-8")
    if train_state is not None:
        with open(directory / TRAIN_STATE, "wb") as handle:  # a file object: a full disk is OSError 28, not
            torch.save(train_state, handle)                   # torch's "[enforce fail at inline_container.cc]"
    records = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        finish_file(path)
        records[path.relative_to(directory).as_posix()] = {"size": path.stat().st_size,
                                                           "sha256": _sha256(path)}
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "files": records}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    fsync_file(directory / MANIFEST)
    _fsync_dir(directory)


def install_directory(temp: Path, target: Path) -> None:
    """Rename the finished ``temp`` to ``target``: old one aside, new one in, old one deleted (a failure
    at any point leaves either the old or the new folder under the name). Checkpoints and exports."""
    aside = None
    if target.exists():
        aside = hidden_sibling(target, ASIDE_PREFIX)
        os.rename(target, aside)
    try:
        os.rename(temp, target)
    except BaseException:
        if aside is not None:  # put the old one back rather than leave the name empty
            os.rename(aside, target)
        raise
    _fsync_dir(target.parent)  # make both renames durable before the old copy disappears
    if aside is not None:
        _remove_quietly(aside)


def _check_weights_only_safe(value, where: str) -> None:
    """Raise TypeError at the first value ``torch.load(weights_only=True)`` would refuse to load.

    Checked up front because torch.save pickles anything, and a bad type would only show up at resume.
    """
    import torch

    if isinstance(value, dict):
        for key, item in value.items():
            _check_weights_only_safe(key, f"{where} key")
            _check_weights_only_safe(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_weights_only_safe(item, f"{where}[{index}]")
    elif not isinstance(value, (torch.Tensor, int, float, str, bool, type(None), torch.dtype,
                                torch.device)):
        raise TypeError(f"{where} is a {type(value).__name__}; train_state may hold only tensors and "
                        "plain Python values (convert numpy arrays and objects to tensors / dicts)")


# --- verifying -----------------------------------------------------------------------------------
def verify_checkpoint(directory: Path) -> None:
    """Raise CheckpointError unless every file listed in the manifest is present with its size and hash."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(_not_a_directory(directory))
    manifest = _read_manifest(directory)
    files = manifest["files"]
    for name in REQUIRED_FILES:
        if name not in files:
            raise CheckpointError(f"{directory / MANIFEST} does not list {name}, so {directory} is not a "
                                  "complete lunalm checkpoint; use another checkpoint.")
    for name, record in files.items():
        path = directory / name
        if not path.is_file():
            raise CheckpointError(f"Checkpoint file {path} is missing; the checkpoint is damaged, use an "
                                  "earlier checkpoint.")
        size = path.stat().st_size
        if size != record["size"]:
            raise CheckpointError(f"Checkpoint file {path} has {size} bytes but the manifest recorded "
                                  f"{record['size']} (truncated or changed); use an earlier checkpoint.")
        if _sha256(path) != record["sha256"]:
            raise CheckpointError(f"Checkpoint file {path} does not match its sha256 in the manifest "
                                  "(corrupted on disk); use an earlier checkpoint.")


def _read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    if not path.is_file():
        raise CheckpointError(_describe_unsealed(directory))
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
        ok = all(isinstance(r["size"], int) and isinstance(r["sha256"], str) for r in files.values())
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise CheckpointError(f"{path} is unreadable or malformed ({error}); the checkpoint is damaged, "
                              "use an earlier checkpoint.") from error
    if not ok or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a lunalm checkpoint manifest; use another checkpoint.")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {manifest['format_version']}, newer than this "
                              f"lunalm reads ({FORMAT_VERSION}); upgrade lunalm.")
    return manifest


# --- listing, pruning, recovering ----------------------------------------------------------------
def step_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """The ``step-*`` directories, oldest step first (hidden temp / aside directories never match)."""
    checkpoints_dir = Path(checkpoints_dir)
    if not checkpoints_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in checkpoints_dir.iterdir()
             if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return [path for _, path in sorted(found)]


def prune_step_checkpoints(checkpoints_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints; failures are logged, never raised.

    A checkpoint is first renamed to a hidden ``.del-`` name, so a half-finished delete never looks like
    a (broken) step checkpoint; its leftovers are retried on the next call. Does not hash the files:
    every visible step directory is complete by construction.
    """
    if keep < 0:
        raise ValueError(f"keep must be >= 0 (got {keep})")
    recover_interrupted_writes(checkpoints_dir)
    steps = step_checkpoints(checkpoints_dir)
    for path in steps[:max(0, len(steps) - keep)]:
        try:
            doomed = hidden_sibling(path, DELETE_PREFIX)
            os.rename(path, doomed)
        except OSError as error:
            logger.warning("could not delete old checkpoint %s (%s); keeping it", path, error)
            continue
        _remove_quietly(doomed)


def recover_interrupted_writes(checkpoints_dir: Path) -> None:
    """Undo what a crash mid-write left behind: restore a replaced checkpoint whose name is empty, and
    delete temporary, replaced and half-deleted directories. Failures are logged, never raised."""
    checkpoints_dir = Path(checkpoints_dir)
    if not checkpoints_dir.is_dir():
        return
    for path in sorted(checkpoints_dir.iterdir()):
        match = _HIDDEN_DIR.match(path.name)
        if not match or not path.is_dir():
            continue
        kind, name = match.groups()
        if not (kind == ASIDE_PREFIX and _restore_aside(path, checkpoints_dir / name)):
            _remove_quietly(path)


def _restore_aside(aside: Path, original: Path) -> bool:
    """Rename a replaced checkpoint back to its name if a crash left that name empty; True if it did."""
    if original.exists():
        return False
    try:
        os.rename(aside, original)
    except OSError as error:
        logger.warning("could not restore %s to %s (%s)", aside, original, error)
        return False
    logger.warning("restored checkpoint %s after an interrupted replace", original)
    return True


def latest_good_checkpoint(checkpoints_dir: Path, on_skip: Callable[[Path, str], None] | None = None,
                           older_than: Path | None = None) -> Path | None:
    """The newest step checkpoint (before ``older_than``, if given) that verifies; ``on_skip(path, reason)``
    for each newer one that fails."""
    recover_interrupted_writes(checkpoints_dir)
    candidates = step_checkpoints(checkpoints_dir)
    if older_than is not None:
        candidates = candidates[:[p.name for p in candidates].index(Path(older_than).name)]
    for path in reversed(candidates):
        try:
            verify_checkpoint(path)
            return path
        except CheckpointError as error:
            if on_skip is not None:  # the caller says it (resume: once, as a warning)
                on_skip(path, str(error))
            else:
                logger.warning("skipping checkpoint %s: %s", path, error)
    return None


# --- loading -------------------------------------------------------------------------------------
def load_train_state(directory: Path) -> dict:
    """The training state of a step checkpoint, on CPU, loaded with ``weights_only=True`` (no code runs).

    Does not re-hash the checkpoint: resume finds it through :func:`latest_good_checkpoint`, which did.
    """
    import pickle

    import torch

    path = Path(directory) / TRAIN_STATE
    if not path.is_file():
        raise CheckpointError(f"{directory} holds no {TRAIN_STATE} (best/ and final/ keep weights only); "
                              "resume from a step-* checkpoint instead.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise CheckpointError(f"{path} cannot be loaded safely ({error}); use an earlier checkpoint.") \
            from error


def load_checkpoint(directory: Path, device="cpu", trust_unverified: bool = False):
    """``(model, tokenizer, meta)`` from a verified checkpoint.

    A plain Hugging Face Llama directory (config.json with model_type llama, model.safetensors,
    tokenizer.json, and no lunalm.json) loads too, with a warning that it is unverified. A lunalm checkpoint
    (it has lunalm.json) whose manifest is missing is damaged and refused unless ``trust_unverified``.
    Pickle weights are never loaded.
    """
    directory = Path(directory)
    if not directory.exists():  # a crash between the two renames of a replace: put the old one back
        for aside in sorted(directory.parent.glob(f"{ASIDE_PREFIX}*")):
            match = _HIDDEN_DIR.match(aside.name)
            if match and match.group(2) == directory.name and _restore_aside(aside, directory):
                break
    if directory.is_file():
        raise CheckpointError(_not_a_directory(directory))
    unsealed_lunalm = (directory / META).is_file() and not (directory / MANIFEST).is_file()
    if unsealed_lunalm and trust_unverified:
        logger.warning("%s has no %s: loading it unverified (--trust-unverified)", directory, MANIFEST)
    elif (directory / MANIFEST).is_file() or unsealed_lunalm or not _looks_like_hf_llama(directory):
        verify_checkpoint(directory)
    else:
        logger.warning("%s has no %s: loading it as an unverified Hugging Face Llama directory",
                       directory, MANIFEST)
    from safetensors import SafetensorError

    meta = _read_meta(directory)
    try:
        return _load_model(directory, meta, device)
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"{directory} cannot be loaded as a model ({type(error).__name__}: "
                              f"{str(error)[:200]}); use another checkpoint.") from error


def _read_meta(directory: Path) -> dict:
    """lunalm.json as a dict ({} when absent); anything else is a damaged checkpoint, said in one line."""
    path = directory / META
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not readable JSON ({error}); the checkpoint is damaged, use another "
                              "checkpoint.") from error
    if not isinstance(meta, dict) or not isinstance(meta.get("model") or {}, dict):
        raise CheckpointError(f"{path} does not hold lunalm's metadata (a JSON object with a 'model' object); "
                              "the checkpoint is damaged, use another checkpoint.")
    return meta


def _load_model(directory: Path, meta: dict, device):
    from lunalm.model import load_pretrained
    from lunalm.tokenizer import Tokenizer

    if (meta.get("model") or {}).get("kind") == "hf":  # a fine-tuned Hugging Face model (luna finetune)
        from lunalm.finetune.adapter import load_hf_checkpoint

        model = load_hf_checkpoint(directory, device=device)
    else:
        model = load_pretrained(directory, device=device)
    tokenizer = Tokenizer.load(directory)
    return model, tokenizer, meta


def _looks_like_hf_llama(directory: Path) -> bool:
    names = ("config.json", "model.safetensors", "tokenizer.json")
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        return all((directory / n).is_file() for n in names) and config.get("model_type") == "llama"
    except (OSError, ValueError, AttributeError):
        return False


# --- messages for things that are not checkpoints ------------------------------------------------
def _not_a_directory(path: Path) -> str:
    if not path.exists():
        return f"Checkpoint {path} does not exist; check the path (checkpoints live in " \
               "runs/<name>/checkpoints/)."
    if path.suffix in PICKLE_SUFFIXES:
        return _pickle_message(path)
    return f"{path} is a file; pass the checkpoint directory that contains it (e.g. " \
           "runs/<name>/checkpoints/best)."


def _pickle_message(path: Path) -> str:
    return f"{path} holds pickle weights, which lunalm never loads because unpickling can run code; " \
           "convert them to safetensors (e.g. transformers' save_pretrained(..., " \
           "safe_serialization=True)) and pass that directory."


def _describe_unsealed(directory: Path) -> str:
    """Why ``directory`` (which has no manifest) is not a lunalm checkpoint, and what to pass instead."""
    names = {p.name for p in directory.iterdir()}
    if (directory / "checkpoints").is_dir():
        best = directory / "checkpoints" / "best"
        return f"{directory} is a run directory, not a checkpoint; pass {best} (or final/, step-*/), " \
               f"or continue training with `luna resume {directory}`."
    if "best" in names or "final" in names or any(_STEP_DIR.match(n) for n in names):
        return f"{directory} is a checkpoints folder; pass one checkpoint inside it, e.g. " \
               f"{directory / 'best'}."
    pickles = sorted(n for n in names if n.endswith(PICKLE_SUFFIXES))
    if pickles and not any(n.endswith(".safetensors") for n in names):
        return _pickle_message(directory / pickles[0])
    if META in names:
        return f"{directory} is a lunalm checkpoint ({META}) with no {MANIFEST}, so its files cannot be " \
               "verified (an interrupted write, a partial copy or tampering); use another checkpoint (an " \
               "earlier step-*/), or pass --trust-unverified to load it anyway."
    if _looks_like_hf_llama(directory):
        return f"{directory} has no {MANIFEST}: it looks like a Hugging Face Llama model directory " \
               "(load_checkpoint reads it unverified), not a lunalm checkpoint."
    missing = [n for n in REQUIRED_FILES if n not in names]
    detail = f" and lacks {', '.join(missing)}" if missing else ""
    return f"{directory} has no {MANIFEST}{detail}, so it is not a complete lunalm checkpoint (an " \
           "interrupted write, or another kind of folder); pass another checkpoint."


# --- file helpers --------------------------------------------------------------------------------
def hidden_sibling(path: Path, prefix: str, suffix: str = "") -> Path:
    """A fresh name beside ``path`` for staging or setting aside (checkpoints and exports)."""
    return path.parent / f"{prefix}{path.name}-{secrets.token_hex(4)}{suffix}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def finish_file(path: Path) -> None:
    """A written file as every other file the user creates (readable by all under the usual umask 022:
    safetensors writes its weights 0600, so another user or a web server could not load a shared model),
    and on disk."""
    mask = os.umask(0)
    os.umask(mask)
    if os.stat(path).st_mode & 0o777 != 0o666 & ~mask:
        os.chmod(path, 0o666 & ~mask)
    fsync_file(path)


def _fsync_dir(path: Path) -> None:
    """Make renames/creations in ``path`` durable; not possible (nor needed) on Windows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories; the rename still happened
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    if not os.path.lexists(path):
        return
    try:
        shutil.rmtree(path)
    except OSError as error:
        logger.warning("could not delete %s (%s); it will be retried on the next prune", path, error)
