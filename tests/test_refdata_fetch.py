"""`zsdist data fetch` against a real HTTP server on loopback: downloads are checked, converted and cached whole;
a checksum mismatch or an interrupted transfer leaves nothing in the cache; a rerun resumes; `--from DIR` works
offline. The source under test is NB101's entry with its URL pointed at the server and the real NASLib format."""
from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zsdist.refdata.digest import content_digest
from zsdist.refdata.sources import SOURCES, Download, RefFile
from zsdist.settings import locate

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RAW = FIXTURES / "naslib" / "zc_nasbench101_head.json"  # NASLib's own file (its first 3 entries)
LAYOUT = FIXTURES / "layout" / "nb101_head.csv"  # the reference layout rows of the same cells
NAME = "naslib/data/zc_nasbench101.json"
TARGET = "nb101/nb101_valid_accuracy_500.csv"


class _Handler(BaseHTTPRequestHandler):
    """Serves `server.files`, honours `Range: bytes=N-`, and drops the connection after `server.cut[path]` bytes."""

    def do_GET(self):
        server = self.server
        server.log.append((self.path, self.headers.get("Range")))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = int(self.headers["Range"][len("bytes="):-1]) if self.headers.get("Range") else 0
        if start >= len(body) > 0:
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        cut = server.cut.pop(self.path, None)
        self.wfile.write(body[start:] if cut is None else body[start:start + cut])
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.cut, httpd.log = {}, {}, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.delenv("ZSDIST_DATA", raising=False)
    monkeypatch.setenv("ZSDIST_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def sources():
    """The sources table as it was after each test (tests point NB101's entry at their own server)."""
    with SOURCES.temporarily():
        yield


def _point_nb101_at(base: str, sha256: str | None) -> None:
    """NB101's table entry, downloading from `base` and expecting the fixture's 3 reference rows."""
    SOURCES.add("nb101", dataclasses.replace(
        SOURCES.remove("nb101"), downloads=(Download(f"{base}/{NAME}", NAME, sha256),),
        files=(RefFile(TARGET, 3, content_digest(LAYOUT)),)))


def _url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fetch(cli, *args):
    code, out, err = cli("data", "fetch", *args)
    assert "Traceback" not in err
    return code, err


def test_fetch_downloads_checks_converts_and_caches(server, cache, cli):
    server.files[f"/{NAME}"] = RAW.read_bytes()
    _point_nb101_at(_url(server), _sha(RAW.read_bytes()))
    code, err = _fetch(cli, "nb101")
    assert code == 0 and "nb101: verified and cached" in err
    # NASLib's JSON → the reference CSV rows, byte for byte
    assert (cache / TARGET).read_bytes() == LAYOUT.read_bytes()
    assert _files(cache) == [cache / TARGET]  # no download or work files left behind
    assert locate(TARGET) == ("cache", cache / TARGET)
    requests = len(server.log)
    code, err = _fetch(cli, "nb101")
    assert code == 0 and "already in the cache" in err and len(server.log) == requests


def test_a_download_with_the_wrong_checksum_is_refused_and_nothing_is_cached(server, cache, cli):
    server.files[f"/{NAME}"] = RAW.read_bytes().replace(b"92.578125", b"92.578126")
    _point_nb101_at(_url(server), _sha(RAW.read_bytes()))
    code, err = _fetch(cli, "nb101")
    assert code == 2 and err.splitlines()[-1].startswith("error: ") and "checksum mismatch" in err
    assert "nothing cached" in err and _files(cache) == []


def test_converted_contents_that_differ_from_the_reference_are_refused(server, cache, cli):
    server.files[f"/{NAME}"] = RAW.read_bytes().replace(b"92.578125", b"92.578126")
    _point_nb101_at(_url(server), None)  # no raw checksum known: the contents decide
    code, err = _fetch(cli, "nb101")
    assert code == 2 and "does not hold the reference data" in err.splitlines()[-1] and _files(cache) == []


def test_an_interrupted_download_leaves_nothing_and_the_rerun_resumes(server, cache, cli):
    body = RAW.read_bytes()
    server.files[f"/{NAME}"] = body
    server.cut[f"/{NAME}"] = 1_000
    _point_nb101_at(_url(server), _sha(body))
    code, err = _fetch(cli, "nb101")
    assert code == 2 and "stopped after 1,000 bytes" in err and "run the same command again" in err
    assert locate(TARGET) is None  # nothing usable: only the partial download waits to be resumed
    (part,) = _files(cache)
    assert part.name.endswith(".part") and part.stat().st_size == 1_000
    code, err = _fetch(cli, "nb101")
    assert code == 0 and server.log[-1] == (f"/{NAME}", "bytes=1000-")
    assert (cache / TARGET).read_bytes() == LAYOUT.read_bytes() and _files(cache) == [cache / TARGET]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_from_a_folder_offline_raw_files_or_the_data_layout(cache, tmp_path, cli):
    _point_nb101_at(f"http://127.0.0.1:{_closed_port()}", _sha(RAW.read_bytes()))
    clone = tmp_path / "NASLib"  # the benchmark's own repository layout
    (clone / NAME).parent.mkdir(parents=True)
    (clone / NAME).write_bytes(RAW.read_bytes())
    code, _ = _fetch(cli, "nb101", "--from", str(clone))
    assert code == 0 and (cache / TARGET).read_bytes() == LAYOUT.read_bytes()
    (cache / TARGET).unlink()
    folder = tmp_path / "data"  # a data folder in zsdist's layout
    (folder / TARGET).parent.mkdir(parents=True)
    (folder / TARGET).write_bytes(LAYOUT.read_bytes())
    code, _ = _fetch(cli, "nb101", "--from", str(folder))
    assert code == 0 and (cache / TARGET).read_bytes() == LAYOUT.read_bytes()
    (cache / TARGET).unlink()
    code, err = _fetch(cli, "nb101", "--from", str(tmp_path / "data" / "nb101"))
    assert code == 2 and "holds neither naslib/data/zc_nasbench101.json nor zc_nasbench101.json" in err
    assert _files(cache) == []


def test_offline_without_a_folder_says_how_to_fetch_from_one(cache, cli):
    _point_nb101_at(f"http://127.0.0.1:{_closed_port()}", None)
    code, err = _fetch(cli, "nb101")
    assert code == 2 and "cannot download" in err and "--from DIR" in err.splitlines()[-1] and _files(cache) == []


def test_embedded_and_unknown_sources(cache, cli):
    code, err = _fetch(cli, "nb201")
    assert code == 0 and "nb201: embedded in the package; nothing to fetch" in err
    code, err = _fetch(cli, "nb2O1")
    assert code == 2 and err == "error: unknown data source 'nb2O1'; did you mean 'nb201'? " \
        f"(known: {', '.join(SOURCES.names())})\n"


def _jpeg(path: Path, size: tuple[int, int], seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=90)


def _convert(name: str, folder: Path, out: Path) -> dict:
    from zsdist.refdata.convert import CONVERTERS

    source = SOURCES.get(name)
    CONVERTERS.get(source.convert)(source, lambda names: [folder / n for n in names], out)
    with np.load(out / source.files[0].path) as npz:
        return {k: npz[k] for k in npz.files}


def test_cifar10_jpegs_become_the_layout_arrays_in_class_order(tmp_path):
    source = SOURCES.get("cifar10_test")
    for i, item in enumerate(source.downloads[::997]):  # a few real names; the rest are copies of one image
        _jpeg(tmp_path / "repo" / item.name, (32, 32), i)
    first = tmp_path / "repo" / source.downloads[0].name
    for item in source.downloads:
        if not (tmp_path / "repo" / item.name).exists():
            (tmp_path / "repo" / item.name).parent.mkdir(parents=True, exist_ok=True)
            os.link(first, tmp_path / "repo" / item.name)
    arrays = _convert("cifar10_test", tmp_path / "repo", tmp_path / "out")
    assert arrays["images"].shape == (10_000, 32, 32, 3) and arrays["images"].dtype == np.uint8
    assert np.array_equal(arrays["labels"], np.repeat(np.arange(10), 1_000))
    assert list(arrays["classes"]) == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                       "ship", "truck"]
    with Image.open(tmp_path / "repo" / source.downloads[997].name) as img:
        assert np.array_equal(arrays["images"][997], np.asarray(img.convert("RGB")))


def test_imagenet_gallery_becomes_250_centre_crops(tmp_path):
    names = [f"n{i:08d}_class_{i}.JPEG" for i in range(1000)]
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "gallery.md").write_text("".join(f"| ![c]({n}) <br/> **c ({i})** |\n"
                                                           for i, n in enumerate(names)))
    for i, n in enumerate(names[::4]):
        _jpeg(tmp_path / "repo" / n, (300 + i % 7, 260 - i % 5), i)
    arrays = _convert("imagenet_224", tmp_path / "repo", tmp_path / "out")
    assert arrays["images"].shape == (250, 224, 224, 3)
    assert np.array_equal(arrays["labels"], np.arange(0, 1000, 4)) and arrays["wnids"][1] == "n00000004"
