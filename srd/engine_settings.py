"""What the engine runs, as plain values: importable without JAX, so the daemon can hand it to its worker."""

from __future__ import annotations

from dataclasses import dataclass

from srd.model.graph import DEFAULT_CONV_ALGORITHM, ConvAlgorithm


@dataclass(frozen=True)
class EngineSettings:
    """What to run: model name or path, noise level, scale, TTA, tile and batch, JAX device."""

    model: str = "upconv7-art"
    noise: int = -1
    scale: int = 2
    tta: bool = False
    tile: int | None = None
    batch: int = 1
    device: str = "auto"
    conv_algorithm: ConvAlgorithm = DEFAULT_CONV_ALGORITHM
