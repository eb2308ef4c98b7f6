"""What a model family is, as data: its passes and their files, its default tile, whether its output
depends on the tile, and how the engine must feed it. Also the same defaults for a network known only by
its graph (a model given as a path), stated here once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from srd.errors import ModelError
from srd.nn.graph import Border, NetworkSpec

# A tile-independent network's default: small enough for little memory, big enough to keep cores busy.
DEFAULT_TILE = 256
# A tile-dependent one's (global pooling, as cunet's): waifu2x-ncnn-vulkan's CPU tile, so results match it.
TILE_DEPENDENT_TILE = 400


class Alpha(Enum):
    """How the reference program upscales an alpha channel."""

    MODEL = "model"  # the network itself, on alpha replicated to RGB (waifu2x's alpha_util)
    BICUBIC = "bicubic"  # ncnn's bicubic Interp per tile (realcugan-, realesrgan-, realsr-ncnn-vulkan)


class Channels(Enum):
    """Which channels a network sees."""

    RGB = "rgb"
    LUMINANCE = "luminance"  # Torch's BT.601 Y; chroma from a Lanczos upscale


@dataclass(frozen=True)
class Pipeline:
    """How the engine feeds a network: its channels, any nearest-neighbour pre-upscale (vgg_7's 2x
    models run on a 2x-enlarged image), how tiles are padded (the context read around each tile when it
    is not just what the network consumes, the multiple tile extents are rounded to, the border), whether
    the network predicts the difference from the nearest-neighbour upscale (Real-CUGAN 4x), how alpha is
    upscaled, whether transparent pixels get their neighbours' colour first (waifu2x's make_border),
    and the blobs of its squeeze-excitation vectors that tiles can share (Real-CUGAN's syncgap)."""

    channels: Channels = Channels.RGB
    pre_upscale: int = 1
    context: int | None = None  # None: what the network's valid convolutions consume
    align: int | None = None  # None: what the network's downsampling needs
    border: Border = Border.REPLICATE
    add_input: bool = False
    alpha: Alpha = Alpha.MODEL
    fill_transparent: bool = True
    shared_pools: tuple[str, ...] = ()

    @property
    def luminance(self) -> bool:
        return self.channels is Channels.LUMINANCE


RGB = Pipeline()
# Real-ESRGAN-ncnn-vulkan's and realsr-ncnn-vulkan's way with networks that keep their size (zero-padded
# convolutions): tiles read 10 px of mirrored context, cropped from the output; bicubic alpha.
OVERLAP_CONTEXT = 10
OVERLAP_TILE = 200  # realsr-ncnn-vulkan's CPU tile
OVERLAP = Pipeline(
    context=OVERLAP_CONTEXT, border=Border.REFLECT, alpha=Alpha.BICUBIC, fill_transparent=False
)


# A community model's default tile: RealSR's CPU tile, as for the ESRGAN conversions above.
COMMUNITY_TILE = OVERLAP_TILE


def community_pipeline(spec: NetworkSpec) -> Pipeline:
    """A community model (srd.models.community) runs as Real-ESRGAN-ncnn-vulkan runs its networks: tiles
    read 10 px of mirrored context, bicubic alpha; a 1-channel one sees luminance."""
    if spec.in_channels == 1:
        return Pipeline(
            Channels.LUMINANCE,
            context=OVERLAP_CONTEXT,
            border=Border.REFLECT,
            alpha=Alpha.BICUBIC,
            fill_transparent=False,
        )
    return OVERLAP


def graph_defaults(spec: NetworkSpec) -> tuple[bool, int]:
    """(tile-dependent, default tile) for a network known only by its graph: an op that sees the whole
    tile (global pooling) makes the output depend on the tile, and such a network gets cunet's tile; one
    that zero-pads its convolutions (an ESRGAN conversion) gets RealSR's CPU tile."""
    tile_dependent = spec.tile_dependent
    if tile_dependent:
        return True, TILE_DEPENDENT_TILE
    return False, OVERLAP_TILE if spec.keeps_size else DEFAULT_TILE


def graph_pipeline(spec: NetworkSpec, pre_upscale: int) -> Pipeline:
    """The pipeline of a network known only by its graph and file name: one input channel is luminance;
    a 2x file name on a 1x network asks for the nearest-neighbour pre-upscale. A network that zero-pads
    its convolutions keeps its size and is run as the ESRGAN family's programs run theirs (OVERLAP)."""
    if spec.keeps_size and spec.in_channels == 3:
        return OVERLAP
    channels = Channels.LUMINANCE if spec.in_channels == 1 else Channels.RGB
    return Pipeline(channels, pre_upscale if spec.scale == 1 else 1)


@dataclass(frozen=True)
class ModelFamily:
    """A family of packaged networks: one per (noise level, scale) pass, noise -1 meaning none."""

    name: str
    arch: str
    description: str
    levels: tuple[tuple[int, int], ...]  # the (noise, scale) passes it has
    file_stem: Callable[[int, int], str]  # the packaged file name of a pass, without suffix
    package: str  # the Python package whose models/ folder holds the files
    tile_dependent: bool = False
    default_tile: int = DEFAULT_TILE
    pipeline: Pipeline = RGB
    scale_pipelines: tuple[tuple[int, Pipeline], ...] = ()  # per scale, where it differs from `pipeline`
    chains_2x: bool = False  # 4x as two 2x passes (noise reduction on the first), as waifu2x does
    licence: str = "MIT"
    levels_note: str = ""  # what the noise levels mean, for `srd models`
    # GFLOP per output megapixel of each scale's pass (srd.nn.cost; tests/unit/test_model_costs.py
    # recomputes them from the graphs), for `srd models`
    gflop_per_mpx: tuple[tuple[int, float], ...] = ()

    def pipeline_of(self, scale: int) -> Pipeline:
        """The pipeline of the family's pass at `scale`."""
        return dict(self.scale_pipelines).get(scale, self.pipeline)

    def native_scales(self, noise: int) -> tuple[int, ...]:
        """The scales it has a pass for at this noise level, ascending."""
        return tuple(sorted(s for (n, s) in self.levels if n == noise))

    @property
    def stems(self) -> dict[tuple[int, int], str]:
        """The file stem of each pass."""
        return {level: self.file_stem(*level) for level in self.levels}

    def stem(self, noise: int, scale: int) -> str:
        """The file stem of one pass; a ModelError naming what exists if the family has no such pass."""
        if (noise, scale) not in self.levels:
            raise ModelError(
                f"model {self.name!r} has no {scale}x model with noise level {noise};"
                f" it offers {self.levels_text()}"
            )
        return self.file_stem(noise, scale)

    def levels_text(self) -> str:
        """The passes as `srd models` and errors list them: "2x noise -1,0,1; ..."."""
        parts = []
        for scale in (1, 2, 3, 4):
            noises = sorted(n for (n, s) in self.levels if s == scale)
            if noises:
                parts.append(f"{scale}x noise {','.join(map(str, noises))}")
        return "; ".join(parts)
