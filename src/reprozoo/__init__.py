"""reprozoo: research papers as reusable, tested PyTorch software.

Each method lives in its own subpackage (``reprozoo.rexnet``, ``reprozoo.sinet``, ...);
shared machinery lives in :mod:`reprozoo.runtime` and :mod:`reprozoo.data`.
"""

from reprozoo.runtime.registry import create_model, list_experiments, list_models

__version__ = "0.1.0"
__all__ = ["__version__", "create_model", "list_models", "list_experiments"]
