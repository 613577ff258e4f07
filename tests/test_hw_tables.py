"""HW-NAS-Bench and HELP tables: lookups equal the published values, NASLib tuples map to HELP's arch strings."""
from __future__ import annotations

import csv
import json

import pyarrow.dataset as pads
import pytest

from zsdist.errors import ZsdistError
from zsdist.hardware import latency_rows
from zsdist.hardware.tables import HELP_DEVICES, HWNB_DEVICES, help_tables, hwnb_tables, ingest_tables, naslib_to_arch
from zsdist.settings import data_file
from zsdist.spaces import create_space
from zsdist.store import Store

SPACE = create_space("nb201")
# HW-NAS-Bench rows 0–2 (CIFAR-10) as printed in RICE-EIC/HW-NAS-Bench example.ipynb, keyed by the HELP file's
# arch_str of the same rows (both files list cells in NB201 index order).
PRINTED = [
    ("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
     {"edgegpu": 5.807418537139893, "raspi4": 10.481976820010459, "edgetpu": 0.9571811309997429,
      "pixel3": 3.6058499999999998, "eyeriss": 3.645620000000001, "fpga": 2.57296}, 24.226614330768584),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
     {"edgegpu": 6.547689437866211, "raspi4": 54.77739761998237, "edgetpu": 1.4389883610001561,
      "pixel3": 17.2381, "eyeriss": 7.577780000000003, "fpga": 5.31536}, 29.997147878011067),
]


def _rows(arch: str, devices: list[str], dataset: str = "cifar10") -> list[dict]:
    arch_id = SPACE.parse(arch)
    return latency_rows("nb201", arch_id, arch, dataset, lambda: SPACE.build(arch_id, dataset), devices)


@pytest.mark.parametrize("arch, latency, energy", PRINTED)
def test_table_rows_equal_the_printed_hw_nas_bench_values(arch, latency, energy):
    rows = {r["device"]: r for r in _rows(arch, list(HWNB_DEVICES))}
    for device, value in latency.items():
        assert rows[device]["status"] == "ok" and rows[device]["source"] == "table"
        assert rows[device]["latency_ms"] == value
    assert rows["edgegpu"]["energy_mj"] == energy and rows["raspi4"]["energy_mj"] is None
    assert json.loads(rows["pixel3"]["details"])["table"] == "hw_nas_bench/hw_cifar10.csv"


@pytest.mark.fulldata  # HELP's tables are fetched, not embedded
def test_naslib_tuples_map_to_helps_arch_strings_for_every_cell():
    hwnb, help_file = data_file("hw_nas_bench/hw_cifar10.csv"), data_file("help_latency/nb201_help_latency.csv")
    with open(hwnb) as a, open(help_file) as b:
        pairs = [(ra["net"], rb["arch_str"]) for ra, rb in zip(csv.DictReader(a), csv.DictReader(b))]
    assert len(pairs) == 15625
    assert all(naslib_to_arch(net) == arch for net, arch in pairs)
    # and the shared columns agree by arch id, so the lookup never relies on row order
    assert (help_tables()["help_raspi4"].latency_ms == hwnb_tables("cifar10")["raspi4"].latency_ms).all()


def test_bad_naslib_tuple_is_named():
    with pytest.raises(ZsdistError, match=r"\(1, 2, 3\)"):
        naslib_to_arch("(1, 2, 3)")


@pytest.mark.fulldata  # HELP's tables are fetched, not embedded
def test_help_devices_are_the_files_27_columns_and_cover_cifar10_only():
    assert sorted(help_tables()) == sorted(HELP_DEVICES) and len(HELP_DEVICES) == 27
    arch = PRINTED[0][0]
    ok, other = _rows(arch, ["help_2080ti_1"]), _rows(arch, ["help_2080ti_1"], "cifar100")
    assert ok[0]["latency_ms"] == pytest.approx(6.029758453369141)
    assert other[0]["status"] == "error" and "no saved predictor" in other[0]["error"]


def test_failed_edgetpu_cells_become_error_rows():
    table = hwnb_tables("imagenet16_120")["edgetpu"]
    arch_id = int(next(i for i in range(SPACE.size) if table.latency_ms[i] != table.latency_ms[i]))  # NaN
    row = _rows(SPACE.arch_str(arch_id), ["edgetpu", "fpga"], "imagenet16_120")
    assert row[0]["status"] == "error" and row[0]["latency_ms"] is None and "edgetpu_latency" in row[0]["error"]
    assert row[1]["status"] == "ok"  # one failing device does not hide the others


@pytest.mark.fulldata  # HELP's tables are fetched, not embedded
def test_ingest_writes_every_table_row_once(tmp_path):
    counts = ingest_tables(Store(str(tmp_path)))
    assert counts == {"hw_nas_bench": 15625 * 6 * 3, "help": 15625 * 27}
    data = pads.dataset(tmp_path / "latency", partitioning="hive").to_table(
        columns=["run_id", "space", "source", "device", "dataset", "arch_id"])
    assert data.num_rows == sum(counts.values())
    assert set(data.column("run_id").to_pylist()) == {"tables"} and set(data.column("source").to_pylist()) == {"table"}
    keys = set(zip(data.column("device").to_pylist(), data.column("dataset").to_pylist(),
                   data.column("arch_id").to_pylist()))
    assert len(keys) == data.num_rows
