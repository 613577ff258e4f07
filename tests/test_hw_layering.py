"""One dependency direction: hw_models (networks in, features and latency out) never imports zsdist; zsdist calls
it. Checked in the source (every import statement, at any depth) and by running it with zsdist unimportable."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import hw_models

PACKAGE = Path(hw_models.__file__).resolve().parent
ROOT = PACKAGE.parent


def imported_modules(path: Path) -> list[str]:
    """Every module an import statement of the file names (function-level and relative ones included)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
    return names


def test_no_module_of_hw_models_imports_zsdist():
    files = sorted(PACKAGE.rglob("*.py"))
    assert {"features.py", "predict.py", "meta.py", "measure.py", "errors.py"} <= {f.name for f in files}
    found = {f"{f.relative_to(ROOT)}: {m}" for f in files for m in imported_modules(f)
             if m.split(".")[0] == "zsdist" or m.startswith("..")}
    assert not found, f"hw_models must not import zsdist: {sorted(found)}"


def test_imported_modules_sees_function_level_imports(tmp_path):
    """The scan above would miss nothing: lazy and aliased imports inside functions count too."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    import zsdist.errors as e\n    from zsdist.spaces import create_space\n")
    assert imported_modules(module) == ["zsdist.errors", "zsdist.spaces"]


# With zsdist unimportable, hw_models still loads a shipped predictor and predicts a network it extracts itself.
STANDALONE = """
import sys
from importlib.abc import MetaPathFinder

class Refuse(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "zsdist":
            raise ImportError(f"hw_models imported {name}")
        return None

sys.meta_path.insert(0, Refuse())
import torch
from torch import nn

from hw_models import errors, measure, meta
from hw_models.features import network_features
from hw_models.predict import load, saved_devices

net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                    nn.Flatten(), nn.Linear(8, 10))
x = network_features(net, (1, 3, 32, 32))
ms = float(load("edgegpu").predict(x[None])[0])
prior = meta.load_prior()
try:
    load("nope")
except errors.HardwareModelError as exc:
    message = str(exc)
print(repr((saved_devices(), ms, len(prior.devices), message)))
"""


def test_hw_models_runs_with_zsdist_unimportable():
    done = subprocess.run([sys.executable, "-c", STANDALONE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    devices, ms, prior_devices, message = ast.literal_eval(done.stdout)
    assert devices == ["edgegpu", "edgetpu", "eyeriss", "fpga", "pixel3", "raspi4"]
    assert ms > 0 and prior_devices > 29 and "no latency predictor for device 'nope'" in message
