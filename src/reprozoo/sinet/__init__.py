"""SINet: extreme lightweight portrait segmentation (Park et al., WACV 2020)."""

from reprozoo.sinet.models import SINET_CONFIG, SINet, SINetEncoder, confidence, sinet, sinet_encoder
from reprozoo.sinet.official import load_official, load_official_sinet, load_pretrained, pretrained_net

__all__ = ["SINET_CONFIG", "SINet", "SINetEncoder", "confidence", "load_official", "load_official_sinet",
           "load_pretrained", "pretrained_net", "sinet", "sinet_encoder"]
