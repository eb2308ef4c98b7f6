"""srd's Python API: upscale Pillow images and numpy arrays in memory with the models `srd upscale` runs.

`Upscaler` holds one `srd.engine.Engine`, built from the same `ModelSettings` and `EngineSettings` as
`srd upscale` and the daemon (one schema, the same checks and messages); its compiled programs are reused
by every later call. `list_models()` lists the built-in models. JAX is imported when the first `Upscaler` is
made, never by `import srd`.

>>> import numpy as np, srd
>>> up = srd.Upscaler("upconv7-art", scale=2, tile=32)
>>> out = up.upscale(np.zeros((16, 16, 3), np.uint8))
>>> out.shape, out.dtype
((32, 32, 3), dtype('uint8'))
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydantic import ValidationError

from srd.errors import UnsupportedFormatError, UsageError
from srd.imaging.encode import quantize
from srd.imaging.raster import RasterImage, icc_matches
from srd.settings import EngineSettings, ModelSettings, describe

if TYPE_CHECKING:
    from srd.engine import Engine

__all__ = ["ModelInfo", "Upscaler", "list_models"]

UIntArray = npt.NDArray[np.uint8] | npt.NDArray[np.uint16]
Progress = Callable[[int, int], None]  # (network tiles done, tiles in all)
# Pillow modes that carry an alpha band: their result keeps one even where every pixel is opaque.
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
# The projects the packaged model files come from, by their PyPI package's suffix.
_PROJECTS = {"waifu2x": "waifu2x", "realcugan": "Real-CUGAN", "realesrgan": "Real-ESRGAN", "realsr": "RealSR"}
_PIL_SOURCE = Path("<Pillow image>")  # what decoding errors name instead of a file


@dataclass(frozen=True)
class ModelInfo:
    """One built-in model: its family (the project it comes from), its architecture, the scales it has a
    pass for and, per scale, its noise levels (-1 = no noise reduction). Other scales run the next larger
    pass, then a Lanczos downscale (waifu2x's families: 4x as two 2x passes)."""

    name: str
    family: str
    arch: str
    description: str
    levels: Mapping[int, tuple[int, ...]]
    licence: str
    default: bool

    @property
    def scales(self) -> tuple[int, ...]:
        """The scales the model has its own pass for, ascending."""
        return tuple(sorted(self.levels))

    @property
    def noise_levels(self) -> tuple[int, ...]:
        """Every noise level some pass offers, ascending."""
        return tuple(sorted({n for noises in self.levels.values() for n in noises}))


def list_models() -> list[ModelInfo]:
    """The built-in models, in `srd models`'s order.

    >>> import srd
    >>> [m.name for m in srd.list_models()][:3]
    ['upconv7-art', 'upconv7-photo', 'cunet']
    >>> cunet = next(m for m in srd.list_models() if m.name == "cunet")
    >>> cunet.family, cunet.arch, cunet.scales, cunet.levels[1], cunet.noise_levels
    ('waifu2x', 'cunet', (1, 2), (0, 1, 2, 3), (-1, 0, 1, 2, 3))
    """
    from srd.models.catalog import BUILTINS
    from srd.settings import DEFAULT_MODEL

    infos = []
    for name, family in BUILTINS.items():
        levels = {
            scale: tuple(sorted(n for n, s in family.levels if s == scale))
            for scale in sorted({s for _, s in family.levels})
        }
        project = _PROJECTS.get(family.package.removeprefix("sr_vulkan_model_"), family.package)
        infos.append(
            ModelInfo(
                name, project, family.arch, family.description, levels, family.licence, name == DEFAULT_MODEL
            )
        )
    return infos


@dataclass(frozen=True)
class _Layout:
    """What the caller handed in, so the result comes back the same way."""

    gray_2d: bool  # an H x W array (not H x W x 1)
    alpha: bool  # an alpha band, kept even where the image turned out fully opaque


class Upscaler:
    """A model compiled for one noise level, scale and device; `upscale` runs it on images in memory.

    The arguments are those of `srd upscale` (`-m`, `-n`, `-s`, `--device`, `--tile`, `--tta`, `--batch`,
    `--conv`, `--precision`, `--alpha`, `--syncgap`) and the config's `model` and `engine` keys, checked by
    the same schema: a bad value raises `srd.errors.UsageError` naming every problem, an unknown or missing
    model `srd.errors.ModelError`, before anything compiles. `compile_cache` (a folder) turns on JAX's
    persistent compilation cache for the process, as `engine.compile_cache` does for the daemon.

    Each tile shape compiles once, on first use (or in `warmup`), and every later call reuses it.

    Threads: one Upscaler may be shared by threads, but its calls are serialised by a lock: the engine
    builds and caches its runners lazily, without locks of its own, so it is not written to be entered
    twice at once. On the CPU one call already uses every core XLA gives it. For parallel work on
    several devices, make one Upscaler per device.

    >>> import srd
    >>> from PIL import Image
    >>> up = srd.Upscaler("upconv7-art", noise=1, scale=2, tile=32)
    >>> up.upscale(Image.new("RGBA", (20, 12), (200, 30, 30, 128))).size
    (40, 24)
    >>> srd.Upscaler(noise=7)
    Traceback (most recent call last):
    ...
    srd.errors.UsageError: At 'noise': Input should be -1, 0, 1, 2 or 3, got 7
    """

    def __init__(
        self,
        model: str | Path = "upconv7-art",
        *,
        noise: int = -1,
        scale: int = 2,
        device: str = "auto",
        tile: int | None = None,
        tta: bool = False,
        batch: int = 1,
        conv: str = "auto",
        precision: str = "float32",
        alpha: str = "reference",
        syncgap: int = 3,
        compile_cache: str | Path | None = None,
    ) -> None:
        model_values: dict[str, object] = {"name": str(model), "noise": noise, "scale": scale, "tta": tta}
        model_values |= {"alpha": alpha, "syncgap": syncgap}
        engine_values: dict[str, object] = {"device": device, "tile": tile, "batch": batch, "conv": conv}
        engine_values |= {"precision": precision, "compile_cache": compile_cache}
        self.model_settings, self.engine_settings = _validated(model_values, engine_values)
        from srd.engine import Engine, enable_compilation_cache

        if self.engine_settings.compile_cache is not None:
            enable_compilation_cache(self.engine_settings.compile_cache)
        self._engine: Engine = Engine(self.model_settings, self.engine_settings)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Upscaler({self.model_settings.model_id}, device={self.device})"

    @property
    def scale(self) -> int:
        """The factor each side grows by."""
        return int(self.model_settings.scale)

    @property
    def device(self) -> str:
        """The JAX device the model runs on, e.g. "cpu:0"."""
        return self._engine.device

    @property
    def compilations(self) -> int:
        """How many programs have been compiled (traced) so far: it stops growing once every tile shape
        the images need has been seen."""
        return self._engine.trace_count

    def warmup(self) -> None:
        """Compile the full-tile shape now rather than on the first image."""
        with self._lock:
            self._engine.warmup()

    @overload
    def upscale(self, image: Image.Image, *, progress: Progress | None = None) -> Image.Image: ...
    @overload
    def upscale(
        self, image: npt.NDArray[np.uint8], *, progress: Progress | None = None
    ) -> npt.NDArray[np.uint8]: ...
    @overload
    def upscale(
        self, image: npt.NDArray[np.uint16], *, progress: Progress | None = None
    ) -> npt.NDArray[np.uint16]: ...

    def upscale(
        self, image: Image.Image | UIntArray, *, progress: Progress | None = None
    ) -> Image.Image | UIntArray:
        """The image upscaled, in the kind it came as.

        A Pillow image of any mode srd's decoder handles (1, L, LA, P, RGB, RGBA, I;16, CMYK, ...) comes
        back as L, LA, RGB or RGBA (I;16 for 16-bit gray), with its ICC profile; its EXIF orientation is
        not applied (`PIL.ImageOps.exif_transpose` first, if you need it). A numpy array of uint8 or
        uint16, H x W (gray), H x W x 1, x 2 (gray + alpha), x 3 (RGB) or x 4 (RGBA), comes back with the
        same dtype and channels. Alpha is upscaled as `srd upscale` does it (`alpha=`). `progress(done,
        total)`, if given, is called (in this thread) as network tiles finish, ending at done == total.

        >>> import numpy as np, srd
        >>> up = srd.Upscaler(scale=2, tile=32)
        >>> gray16 = np.full((10, 14), 40000, np.uint16)
        >>> out = up.upscale(gray16)
        >>> out.shape, out.dtype, abs(int(out.mean()) - 40000) < 300
        ((20, 28), dtype('uint16'), True)
        """
        if isinstance(image, Image.Image):
            raster, layout = _raster_from_pillow(image)
            return _pillow_from_raster(self._run(raster, progress), layout)
        if isinstance(image, np.ndarray):
            raster, layout = _raster_from_array(image)
            return _array_from_raster(self._run(raster, progress), layout)
        raise TypeError(f"expected a PIL.Image.Image or a numpy array, got {type(image).__name__}")

    def _run(self, raster: RasterImage, progress: Progress | None) -> RasterImage:
        with self._lock:
            return self._engine.upscale(raster, progress=progress)


def _validated(
    model_values: dict[str, object], engine_values: dict[str, object]
) -> tuple[ModelSettings, EngineSettings]:
    """Both settings sections built by the schema; every problem of both in one UsageError, each as
    "At 'key': message"."""
    problems: list[str] = []
    built: list[ModelSettings | EngineSettings] = []
    for section, values in ((ModelSettings, model_values), (EngineSettings, engine_values)):
        try:
            built.append(section.model_validate(values))
        except ValidationError as exc:
            problems += describe(exc)
    if problems:
        raise UsageError("; ".join(problems))
    model, engine = built
    assert isinstance(model, ModelSettings) and isinstance(engine, EngineSettings)
    return model, engine


def _raster_from_pillow(image: Image.Image) -> tuple[RasterImage, _Layout]:
    # srd's own decoder's conversion from every Pillow mode (srd/imaging/decode.py), not a second copy.
    from srd.imaging.decode import _from_pillow

    image.load()
    has_alpha = image.mode in _ALPHA_MODES or (
        image.mode == "P" and image.palette is not None and image.palette.mode == "RGBA"
    )
    pixels, alpha, bits = _from_pillow(_PIL_SOURCE, image)
    icc = image.info.get("icc_profile") or None
    raster = RasterImage(pixels, alpha, bits, icc if icc_matches(icc, pixels.shape[2]) else None, "pillow")
    return raster, _Layout(gray_2d=False, alpha=has_alpha)


def _raster_from_array(array: npt.NDArray[Any]) -> tuple[RasterImage, _Layout]:
    if array.dtype not in (np.uint8, np.uint16):
        raise UnsupportedFormatError(f"expected a uint8 or uint16 array, got {array.dtype}")
    gray_2d = array.ndim == 2
    samples = array[..., None] if gray_2d else array
    if samples.ndim != 3 or samples.shape[2] not in (1, 2, 3, 4) or 0 in samples.shape[:2]:
        raise UnsupportedFormatError(f"expected an H x W (x 1, 2, 3 or 4) image array, got {array.shape}")
    maxv = 255 if array.dtype == np.uint8 else 65535
    channels = samples.shape[2]
    colour = samples[..., : 3 if channels >= 3 else 1]
    pixels = colour.astype(np.float32) / np.float32(maxv)
    alpha = None
    if channels in (2, 4) and not bool((samples[..., -1] == maxv).all()):  # opaque: as the decoder does
        alpha = samples[..., -1].astype(np.float32) / np.float32(maxv)
    raster = RasterImage(np.ascontiguousarray(pixels), alpha, 8 if maxv == 255 else 16)
    return raster, _Layout(gray_2d=gray_2d, alpha=channels in (2, 4))


def _samples(image: RasterImage, layout: _Layout, maxv: int, dtype: type[np.unsignedinteger]) -> UIntArray:
    """The output's samples, quantised as srd's encoder does, with an opaque alpha band put back."""
    planes = [image.pixels]
    if image.alpha is not None:
        planes.append(image.alpha[..., None])
    elif layout.alpha:
        planes.append(np.ones((*image.pixels.shape[:2], 1), np.float32))
    return quantize(np.concatenate(planes, axis=2), maxv, dtype)


def _array_from_raster(image: RasterImage, layout: _Layout) -> UIntArray:
    maxv, dtype = (65535, np.uint16) if image.bits == 16 else (255, np.uint8)
    samples = _samples(image, layout, maxv, dtype)
    return samples[..., 0] if layout.gray_2d else samples


def _pillow_from_raster(image: RasterImage, layout: _Layout) -> Image.Image:
    if image.bits == 16 and image.channels == 1 and image.alpha is None and not layout.alpha:
        # Pillow has 16-bit gray only; 16-bit RGB or gray with alpha come back as 8-bit RGB(A) / LA.
        samples = _samples(image, layout, 65535, np.uint16)
        out = Image.fromarray(samples[..., 0].astype("<u2"))  # Pillow's I;16
    else:
        samples = _samples(image, layout, 255, np.uint8)
        out = Image.fromarray(samples[..., 0] if samples.shape[2] == 1 else samples)  # L, LA, RGB, RGBA
    if image.icc_profile is not None:
        out.info["icc_profile"] = image.icc_profile
    return out
