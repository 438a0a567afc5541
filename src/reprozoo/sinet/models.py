"""SINet (Park et al., WACV 2020): the registered models.

``sinet`` is the released portrait model (86,910 trainable parameters for 2 classes; ``pretrained=True``
loads the official EG1800 weights shipped with the package); ``sinet_encoder`` is the stage-1 network
(encoder with its 1/8-resolution head, 86,764). The classes are in :mod:`reprozoo.sinet.network`.
"""

from __future__ import annotations

from reprozoo.runtime.registry import register_model
from reprozoo.sinet.network import DECODERS, SINET_CONFIG, SINet, SINetEncoder, confidence
from reprozoo.sinet.official import load_pretrained, load_weights

__all__ = ["DECODERS", "SINET_CONFIG", "SINet", "SINetEncoder", "confidence", "sinet", "sinet_encoder"]


@register_model
def sinet(num_classes: int = 2, pretrained: bool = False, checkpoint_path=None, **kwargs) -> SINet:
    """SINet portrait segmenter (p=2, q=8, chnn=1): 86,910 parameters for 2 classes.

    ``pretrained=True`` loads the bundled official EG1800 weights (eval mode; the model takes RGB
    normalised as ``model.pretrained_cfg`` says, see :mod:`reprozoo.sinet.official`);
    ``checkpoint_path`` loads a file in our or the official key layout."""
    model = SINet(num_classes=num_classes, **kwargs)
    if pretrained:
        load_pretrained(model)
    if checkpoint_path:
        load_weights(model, checkpoint_path)
    return model


@register_model
def sinet_encoder(num_classes: int = 2, **kwargs) -> SINetEncoder:
    """SINet's encoder with its 1/8-resolution classifier (the stage-1 network): 86,764 parameters."""
    return SINetEncoder(num_classes=num_classes, **kwargs)
