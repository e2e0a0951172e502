"""Archives given as the corpus (``luna train veri.zip``, ``luna analyze tur_news_2020_10K.tar.gz``): a data set
as Kaggle or the Leipzig Corpora Collection ship it, a WhatsApp chat exported with its media, a folder zipped to
be sent. The members that could be corpus files are unpacked once into lunalm's cache
(``cache_root()/unpacked/<name>-<key>/``) and that folder is read as if it had been given: the same patterns,
notes and readers. Photos, audio and other members no pattern reads stay packed.

The key is the archive's real path, size and modification time and the patterns, so a changed archive is
unpacked again and an unchanged one never twice. Nothing is trusted: a member named outside the folder
(``../x``, ``/etc/x``), a link or a device is skipped; the sizes the archive declares are checked against
``MAX_UNPACKED_BYTES`` and the free disk before anything is written, and a member cannot write more than it
declared. The folder appears only when complete (unpacked beside it, then renamed).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from lunalm.errors import CorpusError

UNPACKED_DIR = "unpacked"
MAX_UNPACKED_BYTES = 16 << 30  # what one archive may unpack to (its declared sizes)
FREE_MARGIN_BYTES = 1 << 30  # left free on the cache's disk after unpacking
TAR_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
# Members unpacked besides those the patterns read: what the notes name when the patterns leave them out
# (tables, JSON, formats lunalm cannot read) and WikiExtractor's files, which have no suffix.
NOTED_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".arrow", ".xml", ".doc", ".mobi", ".azw",
                  ".azw3", ".djvu", ".pages", ".txt", ".md")
_HASH_PREFIX = "lunalm unpacked 1"  # changes when what is unpacked changes
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, tarfile.TarError, NotImplementedError,
                RuntimeError)  # RuntimeError: an encrypted zip member opened without its password
_unpacked: dict[Path, Path] = {}  # archive (resolved) -> its folder, for the notes that look through folders


def is_archive(path: Path) -> bool:
    """A zip or tar archive given as the corpus (a ``.fb2.zip`` book, a ``.docx`` or an ``.epub`` are
    documents, read as one text each). A file named .zip that is no zip is left to the reader's error."""
    name = path.name.lower()
    if name.endswith(".zip") and not name.endswith(".fb2.zip"):
        return zipfile.is_zipfile(path)
    return name.endswith(TAR_SUFFIXES) and _is_tar(path)


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, EOFError, tarfile.TarError, zlib.error):
        return False


def unpacked_folder(path: Path) -> Path | None:
    """The folder ``unpack`` made of ``path`` in this process, or None."""
    return _unpacked.get(path.resolve())


def unpack(path: Path, include: tuple[str, ...]) -> Path:
    """The folder holding ``path``'s members that ``include`` or the notes may read (see the module)."""
    from lunalm.corpus.builtin import cache_root

    stat = path.stat()
    key = hashlib.sha256(f"{_HASH_PREFIX}\0{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\0"
                         f"{sorted(include)}".encode()).hexdigest()[:12]
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in path.name)[:60]
    target = cache_root() / UNPACKED_DIR / f"{stem}-{key}"
    if not target.is_dir():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
        except OSError as exc:
            raise CorpusError(f"{path}: cannot unpack it into {target.parent} ({exc.strerror or exc}); set "
                              "LUNALM_CACHE to a folder you can write to, or extract it yourself and pass the "
                              "folder") from None
        try:
            zipped = zipfile.is_zipfile(path)
            try:
                _unzip(path, include, partial) if zipped else _untar(path, include, partial)
            except CorpusError:
                raise
            except _READ_ERRORS as exc:
                how = "with another tool" if zipped else f"(tar xf {path.name})"
                raise CorpusError(f"{path}: cannot unpack this {'zip' if zipped else 'tar'} archive ({exc}); "
                                  f"extract it {how} and pass the extracted folder") from None
            try:
                partial.rename(target)
            except OSError:  # another process unpacked it first
                if not target.is_dir():
                    raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    _unpacked[path.resolve()] = target
    return target


def _member_path(name: str) -> PurePosixPath | None:
    """A member's path inside the folder, or None for one that would land outside it or is hidden
    (``__MACOSX/``, ``.DS_Store``)."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or parts[0] in ("/", "") or any(part in ("..", ".") or part.startswith(".") for part in parts) \
            or parts[0] == "__MACOSX" or ":" in parts[0]:
        return None
    return PurePosixPath(*parts)


def _wanted(member: PurePosixPath, include: tuple[str, ...]) -> bool:
    name = member.name
    return any(fnmatch.fnmatch(name, pattern) for pattern in include) or not PurePosixPath(name).suffix \
        or PurePosixPath(name).suffix.lower() in NOTED_SUFFIXES


def _check_room(path: Path, total: int, folder: Path) -> None:
    if total > MAX_UNPACKED_BYTES:
        raise CorpusError(f"{path}: its text members would unpack to {total / 2**30:.1f} GiB, more than the "
                          f"{MAX_UNPACKED_BYTES >> 30} GiB lunalm unpacks from one archive; extract the files you "
                          "want yourself and pass their folder")
    free = shutil.disk_usage(folder).free
    if total + FREE_MARGIN_BYTES > free:
        raise CorpusError(f"{path}: unpacking it needs {total / 2**20:,.0f} MiB and {folder.parent} has "
                          f"{free / 2**20:,.0f} MiB free; free some space, or set LUNALM_CACHE to a folder on a "
                          "larger disk")


def _copy(source, destination: Path, size: int) -> None:
    """At most ``size`` bytes: what the archive declared, whatever the member holds."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with open(destination, "wb") as out:
        left = size
        while left > 0:
            block = source.read(min(left, 1 << 20))
            if not block:
                break
            out.write(block)
            left -= len(block)


def _zip_name(info: zipfile.ZipInfo) -> str:
    """A member's name. Without the archive's UTF-8 flag zipfile reads it as cp437, but most tools (7-Zip,
    macOS, Linux zip) write UTF-8 there anyway: "Åiirler.txt" is "Şiirler.txt"."""
    if info.flag_bits & 0x800 or info.filename.isascii():
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _unzip(path: Path, include: tuple[str, ...], folder: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        members = [(info, member, info.file_size) for info in archive.infolist() if not info.is_dir()
                   and (member := _member_path(_zip_name(info))) is not None and _wanted(member, include)]
        locked = [info.filename for info, _, _ in members if info.flag_bits & 0x1]
        if locked:
            raise CorpusError(f"{path}: {len(locked)} member(s) are encrypted ({', '.join(locked[:3])}); extract "
                              "them with their password and pass the extracted folder")
        _extract(path, folder, members, archive.open)


def _untar(path: Path, include: tuple[str, ...], folder: Path) -> None:
    with tarfile.open(path) as archive:
        members = [(info, member, info.size) for info in archive.getmembers() if info.isfile()
                   and (member := _member_path(info.name)) is not None and _wanted(member, include)]
        _extract(path, folder, members, archive.extractfile)


def _extract(path: Path, folder: Path, members: list, opener) -> None:
    """Each (member, its path inside ``folder``, its declared size), opened by ``opener``."""
    _check_room(path, sum(size for _, _, size in members), folder)
    for info, member, size in members:
        source = opener(info)
        if source is not None:
            with source:
                _copy(source, folder / member, size)


def describe(path: Path, folder: Path) -> str:
    """The note that says where an archive's text was read from."""
    files = sum(len(names) for _, _, names in os.walk(folder))
    return (f"read {path.name} from its {files:,} unpacked file(s) in {folder} (members that are no text, such "
            "as photos, stay packed)")
