"""The upscaling engine (a model's passes as jit-compiled tile runners on one device) and waifu2x's
image-level pipeline around each pass."""

from srd.engine.engine import (
    Engine,
    check_engine,
    default_cache_dir,
    enable_compilation_cache,
    pick_device,
    plan_passes,
    scale_for_target,
)

__all__ = [
    "Engine",
    "check_engine",
    "default_cache_dir",
    "enable_compilation_cache",
    "pick_device",
    "plan_passes",
    "scale_for_target",
]
