"""The convolution backends by their settings names, and what "auto" means on a platform."""

from __future__ import annotations

from srd.nn.conv import native_backend
from srd.nn.conv.base import ConvBackend
from srd.nn.conv.direct import DIRECT
from srd.nn.conv.winograd import WINOGRAD
from srd.nn.graph import ConvAlgorithm

BACKENDS: dict[str, ConvBackend] = {
    backend.name: backend for backend in (DIRECT, native_backend.NATIVE, native_backend.NATIVE_BF16, WINOGRAD)
}


def backend_named(name: ConvAlgorithm | str) -> ConvBackend:
    """The backend a (resolved) name stands for; "auto" is `resolve`'s business."""
    if name == "auto":
        raise ValueError('the convolution backend must be resolved first, not "auto"')
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown convolution algorithm {name!r}; known: {', '.join(BACKENDS)}") from None


def resolve(name: ConvAlgorithm, platform: str) -> ConvBackend:
    """The backend to run on a JAX platform: "auto" is the native kernel on the CPU when it is built, else
    direct. Asking for one that cannot run there is a ValueError saying why, not a silent fallback."""
    if name == "auto":
        return native_backend.NATIVE if native_backend.NATIVE.unavailable_reason(platform) is None else DIRECT
    backend = backend_named(name)
    why = backend.unavailable_reason(platform)
    if why is not None:
        raise ValueError(why)
    return backend
