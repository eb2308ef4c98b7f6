"""Convolution backends (one module per algorithm: direct, winograd, native) and their registry."""

from srd.nn.conv.base import ConvBackend, PreparedKernels
from srd.nn.conv.direct import DIRECT
from srd.nn.conv.native_backend import NATIVE, NATIVE_BF16
from srd.nn.conv.registry import BACKENDS, backend_named, resolve
from srd.nn.conv.winograd import WINOGRAD

__all__ = [
    "BACKENDS",
    "DIRECT",
    "NATIVE",
    "NATIVE_BF16",
    "WINOGRAD",
    "ConvBackend",
    "PreparedKernels",
    "backend_named",
    "resolve",
]
