"""Build the embedded reference files from a data folder: `python -m zsdist.refdata.build SRC_DIR [OUT_DIR]`.

Tables become Parquet (zstd), image arrays stay .npz (the CIFAR-10 sample is the first 30 images of each class of
the test set). Every output is checked against the sources table's content digest, so the embedded copy holds
exactly what the data folder holds; manifest.json records each file's provenance, licence and sha256.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from zsdist.errors import ZsdistError
from zsdist.refdata.convert import write_npz
from zsdist.refdata.digest import content_digest, file_sha256
from zsdist.refdata.formats import load_npz, read_table_file
from zsdist.refdata.sources import SOURCES, RefFile
from zsdist.settings import EMBEDDED, embedded_path

CIFAR10_SAMPLE_PER_CLASS = 30


def _cifar10_sample(src: Path, out: Path) -> None:
    import numpy as np

    full = load_npz(src / "images/cifar10_test.npz", ("images", "labels", "classes"))
    pick = np.concatenate([np.flatnonzero(full["labels"] == c)[:CIFAR10_SAMPLE_PER_CLASS]
                           for c in range(len(full["classes"]))])
    write_npz(out, {"images": full["images"][pick], "labels": full["labels"][pick], "classes": full["classes"]})


def _build_file(src: Path, f: RefFile, out: Path) -> None:
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    if f.path == "images/cifar10_sample.npz":
        _cifar10_sample(src, out)
    elif out.suffix == ".parquet":
        pq.write_table(read_table_file(src / f.path), out, compression="zstd", compression_level=19)
    else:
        shutil.copyfile(src / f.path, out)


def build(src: Path, out_root: Path = EMBEDDED) -> list[dict]:
    """Write every embedded file under `out_root` and its manifest; returns the manifest entries."""
    manifest = []
    for name in SOURCES.names():
        source = SOURCES.get(name)
        if not source.embedded:
            continue
        for f in source.files:
            out = out_root / embedded_path(f.path).relative_to(EMBEDDED)
            _build_file(src, f, out)
            digest = content_digest(out)
            if digest != f.digest:
                raise ZsdistError(f"{out}: content digest {digest} differs from the sources table's {f.digest}")
            manifest.append({"file": out.relative_to(out_root).as_posix(), "layout_path": f.path, "source": name,
                             "rows": f.rows, "bytes": out.stat().st_size, "sha256": file_sha256(out),
                             "content_digest": digest, "what": source.what, "origin": source.origin,
                             "licence": source.licence})
    (out_root / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: python -m zsdist.refdata.build SRC_DIR [OUT_DIR]", file=sys.stderr)
        return 2
    try:
        entries = build(Path(argv[0]), Path(argv[1]) if len(argv) == 2 else EMBEDDED)
    except ZsdistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for e in entries:
        print(f"{e['file']:40s} {e['bytes']:>10,d} bytes  {e['rows']:>7,d} rows  from {e['layout_path']}")
    print(f"{sum(e['bytes'] for e in entries):,} bytes in {len(entries)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
