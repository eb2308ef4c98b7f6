"""The upscaling engine (a model's passes as jit-compiled tile runners on one device) and waifu2x's
image-level pipeline around each pass."""

from srd.engine.engine import (
    GPU_TILE,
    Engine,
    check_engine,
    conv_backend_for,
    default_cache_dir,
    default_tile,
    enable_compilation_cache,
    pick_device,
    plan_passes,
    scale_for_target,
)

__all__ = [
    "GPU_TILE",
    "Engine",
    "check_engine",
    "conv_backend_for",
    "default_cache_dir",
    "default_tile",
    "enable_compilation_cache",
    "pick_device",
    "plan_passes",
    "scale_for_target",
]
