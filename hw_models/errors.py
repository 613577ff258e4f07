"""The one error of hw_models: input it cannot use (a predictor file of another format, fit data of the wrong
shape). It knows nothing of its caller, which turns it into its own user-facing error."""


class HardwareModelError(ValueError):
    """Unusable input to a feature, predictor or prior function; the message names the input and what is wrong."""
