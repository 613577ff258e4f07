"""The objective of a population of evaluated architectures, from their proxy values (higher is better)."""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from zsdist.search.spec import Objective


def score(objective: Objective, values: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Rows: architectures, columns: `objective.proxies`; NaN where a proxy's value was not finite (status nan).

    One proxy: its value times its direction (NaN stays NaN: never picked). Rank combinations: each proxy's
    direction-applied values ranked ascending among the rows (ties averaged, NaN below every number, as AZ-NAS
    scores -inf), divided by the number of rows, then weighted and summed (ranks) or summed as logs (log_ranks).
    """
    values = np.asarray(values, dtype=np.float64).reshape(len(values), len(objective.proxies))
    directed = values * signs
    if objective.kind == "proxy":
        return directed[:, 0]
    if len(values) == 0:
        return np.zeros(0)
    ranks = rankdata(np.where(np.isnan(directed), -np.inf, directed), method="average", axis=0) / len(values)
    if objective.kind == "log_ranks":
        ranks = np.log(ranks)
    return ranks @ np.asarray(objective.weights)
