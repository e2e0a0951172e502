"""``--hf-dataset NAME[:CONFIG][:SPLIT]``: the data files of a Hugging Face dataset, read as corpus files.

NAME is either a folder written by ``datasets``' ``save_to_disk`` (a ``Dataset``: ``state.json`` naming
its ``.arrow`` files; a ``DatasetDict``: ``dataset_dict.json`` and one such folder per split), or a Hub
dataset id, fetched through the normal Hugging Face cache (``huggingface_hub.snapshot_download``,
``HF_HOME``/``HF_HUB_CACHE``; with ``HF_HUB_OFFLINE=1`` only what is cached). Either way the result is a
list of files that ``lunalm.corpus`` streams row by row (Parquet, Arrow, CSV, TSV, JSONL, text): nothing
is loaded whole, and the ``datasets`` library is not needed.

A Hub dataset's files are chosen by path: CONFIG keeps files below a folder of that name (the layout of
the Hub's Parquet conversion, ``CONFIG/SPLIT/0000.parquet``, and of most multi-config repositories);
SPLIT keeps files whose name or folder starts with it (``train-00000-of-00002.parquet``,
``train/0000.parquet``); without SPLIT, ``train`` when the dataset has one. With one colon, the second
part is a config when a top-level folder has its name, else a split.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from lunalm.errors import CorpusError

DATA_SUFFIXES = (".parquet", ".arrow", ".csv", ".tsv", ".jsonl", ".txt")
DEFAULT_SPLIT = "train"


def hf_dataset_files(spec: str) -> list[str]:
    """The files of ``spec`` (NAME[:CONFIG][:SPLIT]) to read as the corpus."""
    name, *rest = spec.split(":")
    if not name or len(rest) > 2:
        raise CorpusError(f"--hf-dataset {spec}: expected NAME[:CONFIG][:SPLIT], e.g. wikitext:wikitext-2-raw-v1:train")
    folder = Path(name).expanduser()
    if folder.is_dir():
        return _saved_dataset_files(spec, folder, rest)
    return _hub_dataset_files(spec, name, rest)


# --- a datasets.save_to_disk folder ----------------------------------------------------------------
def _saved_dataset_files(spec: str, folder: Path, rest: list[str]) -> list[str]:
    splits_file = folder / "dataset_dict.json"
    if not splits_file.is_file() and not (folder / "state.json").is_file():
        return _snapshot_files(spec, folder, rest)  # a Hub dataset's files in a folder (huggingface-cli download
        #                                             --local-dir, or git clone): chosen as in the cache
    if splits_file.is_file():  # a DatasetDict: one saved Dataset per split
        splits = _json(splits_file).get("splits") or []
        wanted = rest[-1] if rest else DEFAULT_SPLIT if DEFAULT_SPLIT in splits else (splits or [""])[0]
        if wanted not in splits:
            raise CorpusError(f"--hf-dataset {spec}: no split {wanted!r}; splits: {', '.join(splits)}")
        folder = folder / wanted
    elif rest:
        raise CorpusError(f"--hf-dataset {spec}: {folder} is a single saved split; drop :{':'.join(rest)}")
    state = folder / "state.json"
    if not state.is_file():
        raise CorpusError(f"--hf-dataset {spec}: {folder} has no state.json, so it is not a split saved with "
                          "save_to_disk; pass its files as PATH instead")
    files = [folder / entry["filename"] for entry in _json(state).get("_data_files") or []]
    return [str(f) for f in files]


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CorpusError(f"{path}: unreadable ({error})") from None


# --- a Hub dataset through the Hugging Face cache ------------------------------------------------------
def _hub_dataset_files(spec: str, repo_id: str, rest: list[str]) -> list[str]:
    from lunalm.hub import snapshot

    root = snapshot(repo_id, flag="--hf-dataset", error=CorpusError, repo_type="dataset")
    return _snapshot_files(spec, root, rest)


def _snapshot_files(spec: str, root: Path, rest: list[str]) -> list[str]:
    """The data files of a Hub dataset's files under ``root``, chosen by CONFIG and SPLIT (module docstring)."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and data_file(p)
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    relative = [p.relative_to(root) for p in files]
    config, split = _config_and_split(rest, relative)
    chosen = [f for f, r in zip(files, relative)
              if (config is None or config in r.parts[:-1]) and (split is None or _in_split(r, split))]
    if split is None:  # no train split by its leading name (mC4: c4-tr.tfrecord-…, beside
        #                                 c4-tr-validation.tfrecord-…): the held-out splits' files stay out
        training = [f for f in chosen if not any(_names_split(f.relative_to(root), held) for held in HELD_OUT)]
        chosen = training or chosen
    if not chosen:
        found = ", ".join(str(r) for r in relative[:8]) or "no data files"
        raise CorpusError(f"--hf-dataset {spec}: no data files for config {config or '(any)'}, split "
                          f"{split or '(any)'} in {root}; found: {found}")
    return [str(f) for f in chosen]


def data_file(path: Path) -> bool:
    """Whether a file of a Hub dataset holds its rows: Parquet, Arrow, CSV, TSV, JSONL, text, also compressed
    (allenai/c4's ``c4-train.00000-of-01024.json.gz``); ``.json`` compressed, or named by a split (``train.json``;
    ``dataset_infos.json`` is metadata)."""
    from lunalm.corpus.compressed import inner_suffix, is_compressed

    layout = inner_suffix(path)
    return layout in DATA_SUFFIXES or layout == ".json" and (is_compressed(path) or any(
        _in_split(Path(path.name), split) for split in SPLIT_NAMES))

HELD_OUT = ("validation", "valid", "dev", "test")
SPLIT_NAMES = ("train", *HELD_OUT)


def _config_and_split(rest: list[str], relative: list[Path]) -> tuple[str | None, str | None]:
    if len(rest) == 2:
        return rest[0], rest[1]
    top_folders = {r.parts[0] for r in relative if len(r.parts) > 1}  # configs sit at the top
    if len(rest) == 1 and rest[0] not in top_folders and any(_in_split(r, rest[0]) for r in relative):
        return None, rest[0]
    config = rest[0] if rest else None
    in_config = [r for r in relative if config is None or config in r.parts[:-1]]
    return config, DEFAULT_SPLIT if any(_in_split(r, DEFAULT_SPLIT) for r in in_config) else None


def _in_split(relative: Path, split: str) -> bool:
    """Whether a data file belongs to ``split``: a folder or file name that is it or starts with it (the Hub's
    ``data/train-00000-of-00002.parquet``), or names it as a word (mC4's ``c4-tr-validation.tfrecord-…``)."""
    return _names_split(relative, split) is not None


# --- a dataset folder given as PATH ----------------------------------------------------------------------
METADATA_FILES = ("dataset_dict.json", "dataset_info.json", "dataset_infos.json", "state.json")  # datasets' own


def splits_read_together(paths, include: tuple[str, ...], exclude: tuple[str, ...]) -> str | None:
    """A note naming each folder given as PATH that holds a held-out split beside other files (a Hub
    dataset's ``data/validation-….parquet`` beside ``data/train-….parquet``, a ``save_to_disk`` DatasetDict's
    ``validation/`` beside ``train/``, UD's ``tr_imst-ud-test.conllu``, mC4's ``c4-tr-validation.…json.gz``):
    all are read as one corpus, so the model trains on the text it should be scored on. None when there is
    none."""
    from lunalm.corpus.discover import discover

    notes = []
    for raw in paths:
        root = Path(raw).expanduser()
        if not root.is_dir():
            continue
        try:
            relative = [f.relative_to(root) for f in discover([raw], include, exclude)]
        except CorpusError:
            return None  # reading the corpus says what is wrong
        held = [split for split in HELD_OUT if any(_names_split(r, split) for r in relative)]
        if held and not all(any(_names_split(r, split) for split in held) for r in relative):
            notes.append(_held_out_note(raw, relative, held))
    return "; ".join(notes) or None


def _names_split(relative: Path, split: str) -> re.Match | None:
    """Where a file's path names ``split`` as a whole word between separators (``validation-00000-of-00001``,
    ``tr_imst-ud-test.conllu``, ``c4-tr-validation.tfrecord``, ``test/``), or None."""
    return re.search(rf"(^|[-._/ ]){split}($|[-._/ 0-9])", relative.as_posix())


def _held_out_note(raw: str, relative: list[Path], held: list[str]) -> str:
    examples = [next(r for r in relative if _names_split(r, split)) for split in held]
    patterns = []
    for split, example in zip(held, examples):  # the split's word with its separators: '*-dev.*', not '*dev*'
        #                                          (which leaves out devlet.txt too)
        found = _names_split(example, split)
        patterns.append("*" + found.group(1).strip("/") + split + found.group(2) + "*")
    card = " (with its dataset card, README.md)" if Path("README.md") in relative else ""
    hub = all(data_file(r) or r == Path("README.md") for r in relative) and \
        any(_in_split(r, DEFAULT_SPLIT) for r in relative) and any(_in_split(r, held[0]) for r in relative)
    return (f"{raw} holds a dataset's {' and '.join(held)} split{'s' if len(held) > 1 else ''} "
            f"({', '.join(map(str, examples))}) beside its other files, and all are read as one corpus{card}: the "
            "model trains on the text it should be scored on; leave "
            + ("them" if len(held) > 1 else "it") + " out with "
            + " ".join(f"--exclude '{pattern}'" for pattern in patterns)
            + (f", or pass --hf-dataset {raw} (its {DEFAULT_SPLIT} split; {raw}:{held[0]} for that one)" if hub else ""))
