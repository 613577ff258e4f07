"""`zsdist data fetch` and `zsdist data status`: what is not embedded comes from the public locations in the
sources table (or the same files in a folder, offline), is checked and converted to the data-folder layout, and
enters the cache only whole: downloads grow as .part files (a rerun resumes them with an HTTP Range request), a
source's layout files are written in a work folder, checked against the table's content digests and then renamed
into place. A checksum mismatch leaves nothing behind."""
from __future__ import annotations

import http.client
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from zsdist import __version__
from zsdist.errors import ZsdistError
from zsdist.refdata.digest import content_digest, file_sha256
from zsdist.refdata.sources import SOURCES, Download, Source
from zsdist.settings import cache_root, locate

DOWNLOADS = ".downloads"  # under the cache: raw files of unfinished fetches, one folder per source
WORKERS = 8
TIMEOUT_S = 60.0
Say = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _stopped(url: str, size: int, why: object) -> ZsdistError:
    return ZsdistError(f"download of {url} stopped after {size:,} bytes ({why}); run the same command again to "
                       f"resume it")


def download(item: Download, dest: Path) -> None:
    """`item` to `dest` through `dest`.part, resuming a .part left by an earlier attempt; checked if a sha256 is
    known (a mismatch deletes the .part)."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": f"zsdist/{__version__}", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(item.url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if not (exc.code == 416 and have):  # 416 on a resume: the .part is already whole
            raise ZsdistError(f"download of {item.url} failed: HTTP {exc.code} {exc.reason}") from None
        response = None
    except (urllib.error.URLError, OSError) as exc:
        raise ZsdistError(f"cannot download {item.url} ({getattr(exc, 'reason', exc)}); offline, `zsdist data fetch "
                          f"--from DIR` takes the same files from a folder") from None
    if response is not None:
        with response:
            resume = bool(have) and response.status == 206
            expected = response.headers.get("Content-Length")
            got = 0
            try:
                with open(part, "ab" if resume else "wb") as out:
                    while chunk := response.read(1 << 16):
                        out.write(chunk)
                        got += len(chunk)
            except (http.client.IncompleteRead, OSError) as exc:
                raise _stopped(item.url, (have if resume else 0) + got, type(exc).__name__) from None
            if expected is not None and got != int(expected):
                raise _stopped(item.url, (have if resume else 0) + got, f"{int(expected):,} bytes were announced")
    _check_sha256(part, item, delete=True)
    os.replace(part, dest)


def _check_sha256(path: Path, item: Download, delete: bool) -> None:
    if item.sha256 and (actual := file_sha256(path)) != item.sha256:
        if delete:
            path.unlink()
        raise ZsdistError(f"{item.url if delete else path}: checksum mismatch (sha256 {actual[:16]}…, expected "
                          f"{item.sha256[:16]}…); refused, nothing cached")


def _download_all(items: Sequence[Download], folder: Path, name: str, say: Say) -> list[Path]:
    """Every item into `folder` (files finished by an earlier attempt are kept), several at a time."""
    targets = [folder / item.name for item in items]
    todo = [(item, dest) for item, dest in zip(items, targets) if not dest.is_file()]
    done, last = len(items) - len(todo), time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(download, item, dest) for item, dest in todo]
        try:
            for future in futures:
                future.result()
                done += 1
                if len(items) > 1 and (time.monotonic() - last > 5 or done == len(items)):
                    say(f"{name}: {done:,}/{len(items):,} files downloaded")
                    last = time.monotonic()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return targets


def _from_folder(item: Download, folder: Path) -> Path:
    """The file `item` names, as it lies in a clone of its repository (DIR/name) or flat (DIR/basename)."""
    for path in (folder / item.name, folder / Path(item.name).name):
        if path.is_file():
            _check_sha256(path, item, delete=False)
            return path
    raise ZsdistError(f"{folder} holds neither {item.name} nor {Path(item.name).name}")


def _getter(source: Source, from_dir: Path | None, folder: Path, say: Say) -> Callable[[Sequence[str]], list[Path]]:
    first = source.downloads[0]
    base = first.url[: -len(first.name)]  # further files a converter asks for (e.g. those a listing names)
    known = {d.name: d for d in source.downloads}

    def get(names: Sequence[str]) -> list[Path]:
        items = [known.get(n) or Download(base + n, n) for n in names]
        if from_dir:
            return [_from_folder(item, from_dir) for item in items]
        return _download_all(items, folder, source.name, say)

    return get


def _verify(path: Path, source: Source, expected: str) -> None:
    actual = content_digest(path)
    if actual != expected:
        raise ZsdistError(f"{source.name}: {path.name} does not hold the reference data (content digest "
                          f"{actual[:16]}…, expected {expected[:16]}…); refused, nothing cached")


def _fetch_one(source: Source, from_dir: Path | None, say: Say) -> None:
    from zsdist.refdata.convert import CONVERTERS

    cache = cache_root()
    folder = cache / DOWNLOADS / source.name
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".work-") as tmp:
        work = Path(tmp)
        if from_dir and all((from_dir / f.path).is_file() for f in source.files):  # a data folder in our layout
            for f in source.files:
                (work / f.path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(from_dir / f.path, work / f.path)
        else:
            try:
                CONVERTERS.get(source.convert)(source, _getter(source, from_dir, folder, say), work)
            except ZsdistError:
                if not any(folder.rglob("*.part")):  # keep partial downloads to resume; drop bad whole ones
                    shutil.rmtree(folder, ignore_errors=True)
                raise
        try:
            for f in source.files:
                _verify(work / f.path, source, f.digest)
        except ZsdistError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        for f in source.files:
            (cache / f.path).parent.mkdir(parents=True, exist_ok=True)
            os.replace(work / f.path, cache / f.path)
    shutil.rmtree(folder, ignore_errors=True)


def fetch(names: Sequence[str] = (), from_dir: str | None = None, say: Say = _stderr) -> list[str]:
    """Fetch the named sources (default: every source that is not embedded); returns those fetched now."""
    sources = [SOURCES.get(n) for n in names] or [SOURCES.get(n) for n in SOURCES.names()
                                                   if not SOURCES.get(n).embedded]
    folder = Path(from_dir).expanduser() if from_dir else None
    if folder is not None and not folder.is_dir():
        raise ZsdistError(f"--from {from_dir} is not a folder")
    fetched = []
    for source in sources:
        if source.embedded:
            say(f"{source.name}: embedded in the package; nothing to fetch")
        elif all((cache_root() / f.path).is_file() for f in source.files):
            say(f"{source.name}: already in the cache {cache_root()}")
        else:
            start = time.monotonic()
            say(f"{source.name}: fetching from {folder or source.origin}")
            _fetch_one(source, folder, say)
            say(f"{source.name}: verified and cached ({time.monotonic() - start:.1f} s) in {cache_root()}")
            fetched.append(source.name)
    return fetched


@dataclass(frozen=True)
class SourceStatus:
    name: str
    state: str  # embedded | data folder | cache | missing (several joined by '+' when files differ)
    size: int  # bytes of the files found
    detail: str  # the fetch command when missing; checksum result when verified


def status(verify: bool = False) -> list[SourceStatus]:
    """Where each source's files are found; with `verify`, whether their contents match the table's digests."""
    rows = []
    for name in SOURCES.names():
        source = SOURCES.get(name)
        located = [(f, locate(f.path)) for f in source.files]
        found = [(f, where) for f, where in located if where is not None]
        if len(found) < len(located):
            rows.append(SourceStatus(name, "missing", 0, f"run `{source.fetch_command}`"))
            continue
        states = sorted({where for _, (where, _) in found})
        detail = ""
        if verify:
            bad = [f.path for f, (_, path) in found if content_digest(path) != f.digest]
            detail = f"MISMATCH: {', '.join(bad)}" if bad else "contents verified"
        rows.append(SourceStatus(name, "+".join(states), sum(p.stat().st_size for _, (_, p) in found), detail))
    return rows
