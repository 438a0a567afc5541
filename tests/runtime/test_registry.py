import pytest

from reprozoo.errors import UnknownNameError
from reprozoo.runtime.registry import create_model, register_model


@register_model
def _tiny_linear(num_classes: int = 3):
    import torch

    return torch.nn.Linear(4, num_classes)


def test_create_model_passes_kwargs():
    assert create_model("_tiny_linear", num_classes=7).out_features == 7


def test_unknown_model_lists_known():
    with pytest.raises(UnknownNameError, match="unknown model 'nope'; known models: .*_tiny_linear"):
        create_model("nope")


def test_double_registration_is_refused():
    def other():
        return None

    other.__name__ = "_tiny_linear"
    with pytest.raises(ValueError, match="registered twice"):
        register_model(other)
