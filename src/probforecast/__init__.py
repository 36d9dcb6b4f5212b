"""probforecast: multivariate probabilistic forecasting on PyTorch Lightning."""

import warnings as _warnings

__version__ = "0.1.0"

# GluonTS suggests installing orjson or ujson every time it is imported; probforecast reads JSON
# only when it converts a dataset into its cache, so the hint is not actionable for our users.
_warnings.filterwarnings(
    "ignore", message="Using `json`-module for json-handling", module="gluonts.json"
)
