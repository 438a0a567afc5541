"""SINet: extreme lightweight portrait segmentation (Park et al., WACV 2020)."""

from reprozoo.sinet.models import SINET_CONFIG, SINet, SINetEncoder, confidence, sinet, sinet_encoder

__all__ = ["SINET_CONFIG", "SINet", "SINetEncoder", "confidence", "sinet", "sinet_encoder"]
