"""Community models: PyTorch .pth/.ckpt and .safetensors super-resolution files, their architecture and
hyperparameters detected from key names and tensor shapes (as spandrel does), run as srd graphs."""

from __future__ import annotations

from pathlib import Path

from srd.errors import ModelError
from srd.models.community.base import Architecture, CommunityNet
from srd.models.community.compact import Compact
from srd.models.community.dat import DAT
from srd.models.community.esrgan import ESRGAN
from srd.models.community.hat import HAT
from srd.models.community.realplksr import RealPLKSR
from srd.models.community.span import SPAN
from srd.models.community.swinir import SwinIR
from srd.models.statedict import StateDict, read_state_dict
from srd.models.statedict.reader import SUFFIXES

# In the order they are tried: the most specific key sets first.
ARCHITECTURES: tuple[Architecture, ...] = (HAT(), DAT(), SwinIR(), SPAN(), ESRGAN(), Compact(), RealPLKSR())


def is_community_file(path: Path) -> bool:
    """Whether srd reads this file as a community model (by its suffix)."""
    return path.suffix.lower() in SUFFIXES


def detect_network(state: StateDict, label: str = "the state dict") -> CommunityNet:
    """The network of the first architecture whose keys match; a ModelError listing the architectures
    srd knows where none does."""
    for arch in ARCHITECTURES:
        if arch.matches(state):
            return arch.build(state)
    sample = ", ".join(sorted(state)[:5])
    known = ", ".join(a.name for a in ARCHITECTURES)
    raise ModelError(
        f"{label}: not an architecture srd knows ({known}); its first keys are {sample or 'none'}"
    )


def read_network(path: Path) -> CommunityNet:
    """Read and detect a community model file."""
    return detect_network(read_state_dict(path), f"model file {path}")


__all__ = ["ARCHITECTURES", "CommunityNet", "detect_network", "is_community_file", "read_network"]
