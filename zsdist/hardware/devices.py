"""Table and predicted devices: each table device answers NB201 cells from its table and other architectures
from its saved predictor (hw_models/params/<device>.json); devices with only a predictor are registered too."""
from __future__ import annotations

import functools
import warnings

import numpy as np

from hw_models.features import network_features
from hw_models.predict import load, saved_devices
from zsdist.errors import ZsdistError
from zsdist.hardware import Estimate, Query, register_device, user_input
from zsdist.hardware.features import input_shape
from zsdist.hardware.tables import HELP_DEVICES, HWNB_DEVICES, table_for

PREDICT_BATCH = 1  # predictors read the features of one input


@functools.cache
def _predictor(device: str):
    with user_input():
        return load(device)


def estimate_with(device: str, predictor, query: Query, details: dict, batch_size: int = PREDICT_BATCH) -> Estimate:
    """A predictor applied to the operator features of the built network (one input: the features describe the
    network, while the batch size its latency holds for belongs to the device); features beyond the networks it
    was fitted on are named in the details."""
    features = network_features(query.build(), input_shape(query.dataset, PREDICT_BATCH))
    latency = float(predictor.predict(features[None])[0])
    out = predictor.out_of_range(features)
    if out:  # one message per device, space and dataset: a run prints each distinct warning once
        warnings.warn(f"latency device '{device}' predicts {query.space} networks ({query.dataset}) beyond "
                      f"the networks it was fitted on; those rows say \"extrapolated\" in details, with the features "
                      f"out of range", stacklevel=2)
    return Estimate(latency, None, "predicted", batch_size, {**details, **(
        {"extrapolated": True, "out_of_range": out} if out else {})})


def predicted(device: str, query: Query) -> Estimate:
    """The device's saved predictor (hw_models/params/<device>.json)."""
    predictor = _predictor(device)
    return estimate_with(device, predictor, query, {"predictor": f"{device}.json", "kind": predictor.kind,
                                                    "fit": predictor.fit})


def _from_table(device: str):
    def estimate(query: Query) -> Estimate:
        table = table_for(device, query.dataset) if query.space == "nb201" else None
        if table is None:
            if device not in saved_devices():
                raise ZsdistError(f"device '{device}' has a table for NB201 only and no saved predictor for "
                                  f"{query.space}/{query.dataset}")
            return predicted(device, query)
        value = table.latency_ms[query.arch_id]
        if np.isnan(value):
            raise ZsdistError(f"no valid measurement of arch {query.arch_id} in {table.file}:{table.column}")
        energy = None if table.energy_mj is None or np.isnan(table.energy_mj[query.arch_id]) \
            else float(table.energy_mj[query.arch_id])
        return Estimate(float(value), energy, "table", 1, {"table": table.file, "column": table.column,
                                                             "energy_column": table.energy_column})
    return estimate


for _name in HWNB_DEVICES:
    register_device(_name, "table", f"HW-NAS-Bench {_name} (NB201 table; predictor elsewhere)")(_from_table(_name))
for _name in HELP_DEVICES:
    register_device(_name, "table", f"HELP {_name[5:]} (NB201 CIFAR-10 table)")(_from_table(_name))
for _name in saved_devices():
    if _name not in HWNB_DEVICES and _name not in HELP_DEVICES:
        register_device(_name, "predicted", f"predictor {_name}.json")(functools.partial(predicted, _name))
