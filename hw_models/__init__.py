"""Networks in, operator features and latency out: feature extraction from one forward pass (features), latency
predictors over those features (predict), the device prior that few measured networks adapt (meta), timing of a
built network (measure), and the shipped parameters (params/). It depends on torch, numpy and scipy only; zsdist
calls it (zsdist.hardware registers the devices built on it), never the reverse.
"""
from hw_models import meta  # noqa: F401  registers the "meta" predictor kind, so any saved predictor loads
