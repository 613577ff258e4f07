"""Operator-level features of any nn.Module, recorded on one real forward pass, so predictors carry across spaces.

Every aten operator the forward pass dispatches becomes an `OpRecord` (kind, FLOPs, bytes moved, parameters)
with a state. "live": the output depends on it. "idle": the output does not depend on it only because it works
on all-zero data (downstream of a zeroed branch, such as NB201 nodes fed by `none` edges alone); a runtime that
drops multiplications by zero but not the work after them still runs it. "dead": its result only reaches the
output through an operator that zeroes non-zero data (`x * 0`), or not at all. Devices differ in which of these
they spend time on, so the predictor sees the three apart.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

FEATURES_VERSION = 5

# aten operator name → kind. Operators that only reshape or allocate move no data and count as "view".
_KINDS = {
    "convolution": "conv", "addmm": "matmul", "mm": "matmul", "bmm": "matmul", "baddbmm": "matmul",
    "_native_batch_norm_legit_no_training": "norm", "_native_batch_norm_legit": "norm",
    "native_batch_norm": "norm", "native_layer_norm": "norm", "native_group_norm": "norm",
    "relu": "act", "relu_": "act", "gelu": "act", "silu": "act", "silu_": "act", "hardswish": "act",
    "hardswish_": "act", "sigmoid": "act", "tanh": "act", "hardtanh": "act", "hardtanh_": "act",
    "hardsigmoid": "act", "clamp": "act", "clamp_min": "act",
    "avg_pool2d": "pool", "max_pool2d_with_indices": "pool", "_adaptive_avg_pool2d": "pool", "mean": "pool",
    "add": "elementwise", "add_": "elementwise", "mul": "elementwise", "mul_": "elementwise", "sub": "elementwise",
    "div": "elementwise", "div_": "elementwise",
    "_softmax": "softmax", "cat": "copy", "clone": "copy", "_to_copy": "copy", "copy_": "copy",
    "constant_pad_nd": "copy",
    "view": "view", "_unsafe_view": "view", "reshape": "view", "t": "view", "transpose": "view",
    "permute": "view", "expand": "view", "unsqueeze": "view", "squeeze": "view", "slice": "view",
    "select": "view", "split": "view", "split_with_sizes": "view", "detach": "view", "alias": "view",
    "flatten": "view", "unbind": "view", "empty": "view", "new_empty": "view",
}
# Convolutions split by kernel: a 1×1 conv is a matmul to most runtimes, a k×k one is not.
KINDS = ("conv1x1", "convkxk", "dwconv", "matmul", "norm", "act", "pool", "elementwise", "softmax", "copy", "other")
STATES = ("live", "idle", "dead")
QUANTITIES = ("count", "mflops", "mbytes")
FEATURE_NAMES = tuple([f"{k}.{s}.{q}" for k in KINDS for s in STATES for q in QUANTITIES]
                      + [f"critical.{k}.{q}" for k in KINDS for q in QUANTITIES]
                      + [f"join.{q}" for q in ("count", "inputs", "mbytes")]
                      + [f"shared.{k}.{q}" for k in KINDS for q in ("count", "readers")])


@dataclass(frozen=True)
class OpRecord:
    kind: str
    flops: float  # multiply-accumulates for conv / matmul, output elements otherwise
    bytes: float  # activations read + written + parameters read
    params: int
    out_shape: tuple[int, ...]
    state: str  # one of STATES
    critical: bool  # on the longest chain of dependent operators to the output
    inputs: int  # distinct operators whose results it reads: ≥ 2 joins parallel branches
    shared: int  # other operators reading the same input (its most-read one): it cannot be fused into its producer


class _Recorder(TorchDispatchMode):
    """Records each dispatched operator with the operators that produced its tensor inputs."""

    def __init__(self, weights: set[int]) -> None:
        super().__init__()
        self.weights = weights
        self.nodes: list[dict[str, Any]] = []
        self.producer: dict[int, int] = {}
        self.keep: list[torch.Tensor] = []  # keeps ids unique while recording

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        inputs = _tensors(args) + _tensors(tuple((kwargs or {}).values()))
        outputs = _tensors(out)
        is_weight = [t.dim() > 0 and t.data_ptr() in self.weights for t in inputs]
        acts = [t for t, w in zip(inputs, is_weight) if not w]
        params = [t for t, w in zip(inputs, is_weight) if w]
        kind = _kind(name, args)
        first = outputs[0] if outputs else None
        self.nodes.append({
            "kind": kind,
            "flops": _flops(kind, name, args, first),
            "bytes": float(sum(t.numel() * t.element_size() for t in inputs + outputs)) if kind != "view" else 0.0,
            "params": sum(t.numel() for t in params),
            "out_shape": tuple(first.shape) if first is not None else (),
            "deps": sorted({self.producer[id(t)] for t in acts if id(t) in self.producer}),
            "external": any(id(t) not in self.producer and t.dim() > 0 for t in acts),  # e.g. the model input
            "zero": bool(first is not None and first.is_floating_point() and first.numel() > 0
                         and not bool(first.any())),
        })
        for t in outputs:
            self.producer[id(t)] = len(self.nodes) - 1
            self.keep.append(t)
        self.keep.extend(inputs)
        return out


def _tensors(value: Any) -> list[torch.Tensor]:
    """The tensors in an operator's arguments or results (aten nests them in lists and tuples only)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def _kind(name: str, args: tuple) -> str:
    kind = _KINDS.get(name, "other")
    if kind != "conv":
        return kind
    if len(args) > 8 and int(args[8]) > 1:
        return "dwconv"
    return "conv1x1" if all(k == 1 for k in args[1].shape[2:]) else "convkxk"


def _flops(kind: str, name: str, args: tuple, out: torch.Tensor | None) -> float:
    if out is None or kind == "view":
        return 0.0
    if kind in ("conv1x1", "convkxk", "dwconv"):
        weight = args[1]
        return float(out.numel() * weight[0].numel())
    if kind == "matmul":
        a = args[1] if name in ("addmm", "baddbmm") else args[0]
        return float(out.numel() * a.shape[-1])
    return float(out.numel())


def extract(model: nn.Module, inputs: torch.Tensor) -> list[OpRecord]:
    """The operators of one eval-mode forward pass of `inputs`, each with its state (live, idle or dead)."""
    weights = {t.data_ptr() for t in list(model.parameters()) + list(model.buffers())}
    recorder = _Recorder(weights)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), recorder:
            out = model(inputs)
    finally:
        model.train(was_training)
    nodes = recorder.nodes
    outputs = [recorder.producer[id(t)] for t in _tensors(out) if id(t) in recorder.producer]
    live = _reachable(nodes, outputs, cut=lambda n: n["zero"])
    used = _reachable(nodes, outputs, cut=lambda n: n["zero"] and (n["external"] or any(
        not nodes[d]["zero"] for d in n["deps"])))  # cut only where non-zero data is zeroed
    critical = _critical_path(nodes, outputs)
    readers = np.bincount([d for n in nodes for d in n["deps"]], minlength=len(nodes))
    return [OpRecord(n["kind"], n["flops"], n["bytes"], n["params"], n["out_shape"],
                     "live" if live[i] else "idle" if used[i] else "dead", i in critical, len(n["deps"]),
                     max((int(readers[d]) - 1 for d in n["deps"]), default=0))
            for i, n in enumerate(nodes) if n["kind"] != "view"]


def _reachable(nodes: list[dict[str, Any]], outputs: list[int], cut: Callable[[dict], bool]) -> list[bool]:
    """Operators the outputs reach backwards, not passing beyond operators for which `cut` holds."""
    seen = [False] * len(nodes)
    stack = list(outputs)
    while stack:
        i = stack.pop()
        if not seen[i]:
            seen[i] = True
            if not cut(nodes[i]):
                stack.extend(nodes[i]["deps"])
    return seen


def _critical_path(nodes: list[dict[str, Any]], outputs: list[int]) -> set[int]:
    """The longest chain of operators, each waiting for the last, that ends at the output: what a device that
    runs independent branches in parallel (or a latency-bound GPU launching kernels one by one) runs in sequence.
    It follows data flow as executed, zeros included (an `x * 0` still waits for x)."""
    depth: list[int] = []
    for node in nodes:  # nodes are in execution order, so producers come first
        depth.append((node["kind"] != "view") + max((depth[d] for d in node["deps"]), default=0))
    path: set[int] = set()
    i = max(outputs, key=lambda o: depth[o], default=None)
    while i is not None:
        path.add(i)
        i = max(nodes[i]["deps"], key=lambda d: depth[d], default=None)
    return path


_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}


def aggregate(records: Iterable[OpRecord]) -> np.ndarray:
    """One fixed-length vector per network: count, MFLOPs and MB moved per operator kind and state; the same
    per kind along the critical path (what parallel branches cannot hide); the live operators that join
    branches (count, inputs read, MB); and per kind the live operators that read a tensor others read too
    (count, extra readers): fusing runtimes merge an operator into its producer only when it is the sole reader."""
    vector = np.zeros(len(FEATURE_NAMES))
    for r in records:
        work = (1.0, r.flops / 1e6, r.bytes / 1e6)
        _add(vector, f"{r.kind}.{r.state}", work)
        if r.critical:
            _add(vector, f"critical.{r.kind}", work)
        if r.state == "live" and r.inputs >= 2:
            _add(vector, "join", (1.0, r.inputs, r.bytes / 1e6))
        if r.state == "live" and r.shared:
            _add(vector, f"shared.{r.kind}", (1.0, r.shared))
    return vector


def _add(vector: np.ndarray, block: str, values: tuple[float, ...]) -> None:
    """Adds `values` to the consecutive features of a block, which starts with its count."""
    start = _INDEX[f"{block}.count"]
    vector[start:start + len(values)] += values


def network_features(model: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """The feature vector of a network for inputs of `input_shape` (N×C×H×W), from seeded random inputs."""
    generator = torch.Generator().manual_seed(seed)
    return aggregate(extract(model, torch.randn(input_shape, generator=generator)))
