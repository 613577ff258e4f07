"""Reference data: the embedded files hold exactly the reference contents, lookups go data folder → embedded →
cache, missing data names its source and the command that fetches it, and importing the data modules is cheap."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from boxtable import box_rows

from zsdist.errors import ZsdistError
from zsdist.refdata.digest import content_digest, file_sha256
from zsdist.refdata.sources import SOURCES
from zsdist.settings import EMBEDDED, data_file, embedded_path, locate, read_table

EMBEDDED_FILES = [f for n in SOURCES.names() if SOURCES.get(n).embedded for f in SOURCES.get(n).files]
FULL_DATA = os.environ.get("ZSDIST_DATA", "")  # the fulldata tests' folder, before each test hides it


@pytest.fixture(autouse=True)
def no_data_folder(tmp_path, monkeypatch):
    """Every test starts as a fresh install: no data folder, an empty cache."""
    monkeypatch.delenv("ZSDIST_DATA", raising=False)
    monkeypatch.setenv("ZSDIST_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("ref", EMBEDDED_FILES, ids=lambda f: f.path)
def test_embedded_file_holds_the_reference_contents(ref):
    assert content_digest(embedded_path(ref.path)) == ref.digest
    assert locate(ref.path) == ("embedded", embedded_path(ref.path))


def test_manifest_records_provenance_licence_and_bytes_of_each_embedded_file():
    manifest = json.loads((EMBEDDED / "manifest.json").read_text())
    assert sorted(e["layout_path"] for e in manifest) == sorted(f.path for f in EMBEDDED_FILES)
    for entry in manifest:
        assert entry["origin"] and entry["licence"] and entry["what"]
        assert file_sha256(EMBEDDED / entry["file"]) == entry["sha256"]
    stored = sum(p.stat().st_size for p in EMBEDDED.rglob("*") if p.is_file())
    assert stored < 4_000_000  # the wheel stays small


def test_an_embedded_table_reads_with_its_row_count_and_as_a_csv_file():
    table = read_table("nb201/nb201_accuracy.csv")
    assert table.num_rows == 15_625 and "valid_cifar100" in table.column_names
    csv_file = data_file("nb201/nb201_accuracy.csv")  # written once under the cache for readers of the file
    assert csv_file.suffix == ".csv" and str(csv_file).startswith(os.environ["ZSDIST_CACHE"])
    assert content_digest(csv_file) == SOURCES.get("nb201").files[0].digest


def test_a_data_folder_comes_first_then_embedded_then_cache(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "cifar100_samples.npz").write_bytes(embedded_path("images/cifar100_samples.npz").read_bytes())
    monkeypatch.setenv("ZSDIST_DATA", str(folder))
    assert locate("images/cifar100_samples.npz") == ("data folder", folder / "images" / "cifar100_samples.npz")
    assert locate("images/imagenet16_120_sample.npz")[0] == "embedded"  # not in the folder: falls through
    cached = Path(os.environ["ZSDIST_CACHE"]) / "vit" / "pit_gt.json"
    cached.parent.mkdir(parents=True)
    cached.write_text("[]")
    assert locate("vit/pit_gt.json") == ("cache", cached)


def test_missing_data_names_the_source_and_the_command_that_fetches_it():
    with pytest.raises(ZsdistError) as info:
        data_file("images/imagenet_val_sample_224.npz")
    assert "source 'imagenet_224'" in str(info.value) and "`zsdist data fetch imagenet_224`" in str(info.value)


def test_a_truncated_table_in_the_data_folder_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "hw_nas_bench"
    folder.mkdir(parents=True)
    lines = data_file("hw_nas_bench/hw_cifar10.csv").read_text().splitlines(keepends=True)
    (folder / "hw_cifar10.csv").write_text("".join(lines[:7_000]))  # cut at a row boundary
    monkeypatch.setenv("ZSDIST_DATA", str(tmp_path / "data"))
    with pytest.raises(ZsdistError, match=r"holds 6,999 rows, not the 15,625 of hw_nas_bench/hw_cifar10.csv"):
        read_table("hw_nas_bench/hw_cifar10.csv")


def test_status_lists_each_source_where_it_is_and_how_to_get_it(cli):
    code, out, _ = cli("data", "status", "--verify")
    rows = box_rows(out)
    lines = {row[0]: " ".join(row) for row in rows if row[0] in SOURCES}
    assert code == 0 and sorted(lines) == SOURCES.names()
    assert "embedded" in lines["nb201"] and "contents verified" in lines["nb201"]
    assert "missing" in lines["nb101"] and "run `zsdist data fetch nb101`" in lines["nb101"]


def test_data_modules_import_no_heavy_library(repo):
    code = ("import sys, zsdist.data, zsdist.truth, zsdist.settings, zsdist.ingest, zsdist.refwrite, "
            "zsdist.refdata.sources, zsdist.refdata.fetch, zsdist.refdata.convert, zsdist.refdata.formats, "
            "zsdist.refdata.build; print(sorted(m for m in ('torch', 'ray', 'duckdb', 'pyarrow') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(repo)})
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


@pytest.mark.fulldata
def test_build_from_the_data_folder_reproduces_the_embedded_files(tmp_path):
    from zsdist.refdata.build import build

    for entry in build(Path(FULL_DATA), tmp_path):
        assert file_sha256(tmp_path / entry["file"]) == file_sha256(EMBEDDED / entry["file"]), entry["file"]


@pytest.mark.fulldata
def test_the_sources_table_checksums_match_the_full_data_folder(monkeypatch):
    from zsdist.refdata.fetch import status

    monkeypatch.setenv("ZSDIST_DATA", FULL_DATA)
    rows = status(verify=True)
    assert all(r.detail == "contents verified" for r in rows), [(r.name, r.detail) for r in rows]
    assert {r.name for r in rows if r.state == "data folder"} == set(SOURCES.names()) - {"cifar10_sample"}
