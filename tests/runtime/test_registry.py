import pytest

from reprozoo.errors import ConfigError, UnknownNameError
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


@register_model
def _tiny_with_weights(pretrained: bool = False, checkpoint_path=None, width: int = 2):
    import torch

    net = torch.nn.Linear(width, 1)
    net.loaded_from = "bundled" if pretrained else checkpoint_path
    return net


def test_create_model_passes_pretrained_and_checkpoint_path_to_constructors_that_take_them(tmp_path):
    import torch

    assert create_model("_tiny_with_weights").loaded_from is None
    assert create_model("_tiny_with_weights", pretrained=True).loaded_from == "bundled"
    official = tmp_path / "w.pt"  # not our format: the constructor's own reader gets the path
    torch.save(torch.nn.Linear(3, 1).state_dict(), official)
    assert create_model("_tiny_with_weights", checkpoint_path=official, width=3).loaded_from == official
    assert create_model("_tiny_linear", pretrained=False, checkpoint_path=None).out_features == 3


def test_pretrained_of_a_model_without_weights_is_a_config_error():
    with pytest.raises(ConfigError, match="model '_tiny_linear' has no pretrained weights"):
        create_model("_tiny_linear", pretrained=True)


def test_unknown_kwargs_are_config_errors_naming_the_key():
    with pytest.raises(ConfigError, match=r"model '_tiny_linear' does not take drop_rate=\.\.\.; it takes: num_classes"):
        create_model("_tiny_linear", drop_rate=0.1)
