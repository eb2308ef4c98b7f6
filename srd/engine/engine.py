"""The upscaling engine: a model plan (noise and scale passes), jit-compiled tile runners on one device,
and waifu2x's pipeline around them, turning one RasterImage into another."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import jax
import numpy as np

from srd.engine.pipeline import Array32, fill_transparent, resize_lanczos, upscale_luminance, upscale_rgb
from srd.engine.syncgap import SAMPLE_TILE, shared_pools
from srd.errors import ModelError, UsageError
from srd.imaging.raster import RasterImage
from srd.models.catalog import BUILTINS
from srd.models.family import Alpha
from srd.models.registry import LoadedModel, folder_has_pass, is_community_model, load_step
from srd.nn.conv import DIRECT, ConvBackend, resolve
from srd.nn.geometry import remember_geometry_in
from srd.nn.graph import ConvAlgorithm
from srd.nn.resample import bicubic_per_tile
from srd.nn.tile_plan import SharedPools, TileGeometry, round_up
from srd.nn.tiling import TileCounter, TileRunner
from srd.settings import EngineSettings, ModelSettings

# The least tile a tile-independent network gets on a GPU or TPU when engine.tile is unset: 512x512 tiles
# (x batch) keep an accelerator's thousands of lanes busy where the CPU's 256 would leave it idle between
# calls; memory is no concern at this size (upconv7's largest activation for one 512 tile is ~0.3 GB).
GPU_TILE = 512

__all__ = [
    "GPU_TILE",
    "Engine",
    "EngineSettings",
    "ModelSettings",
    "ProgressFn",
    "check_engine",
    "conv_backend_for",
    "default_cache_dir",
    "default_tile",
    "enable_compilation_cache",
    "pick_device",
    "plan_passes",
    "scale_for_target",
]


ProgressFn = Callable[[int, int], None]  # (tiles done, tiles in all), called as tiles finish


class _TileTally:
    """Counts finished tiles against the total an image needs (Engine.tile_count) and reports each step."""

    def __init__(self, total: int, report: ProgressFn) -> None:
        self.total, self.done, self.report = total, 0, report

    def add(self, tiles: int) -> None:
        self.done += tiles  # not clamped: a test checks the count ends at exactly the total
        self.report(self.done, self.total)


def enable_compilation_cache(folder: Path) -> None:
    """Keep compiled programs in `folder` (JAX's persistent cache), so a restart or a second run skips
    compilation. The folder is created private: it holds machine code that will be run (SECURITY.md)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))  # type: ignore[no-untyped-call]
    # Even quick compiles are worth caching: a worker restarted after a crash is ready in seconds.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # type: ignore[no-untyped-call]
    # Each model's geometry (probed by tracing it at several sizes) is kept beside its programs.
    remember_geometry_in(folder / "srd-geometry")


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/srd/jax (or ~/.cache/srd/jax), for `srd upscale`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "srd" / "jax"


def pick_device(setting: str) -> jax.Device:
    """`auto` takes JAX's default device; `cpu`, `gpu`, `tpu` (or `cuda`, `rocm`) ask for a platform;
    `PLATFORM:N` its device N (a worker of several: srd/workers/placement.py)."""
    name, _, index_text = setting.partition(":")
    index = int(index_text) if index_text.isdigit() else 0
    try:
        devices = jax.devices() if name == "auto" else jax.devices(name)
        if index >= len(devices):
            raise RuntimeError(f"it has {len(devices)} device(s), so no device {index}")
        return devices[index]
    except RuntimeError as exc:
        hint = ""
        if name in ("gpu", "cuda"):
            hint = "; JAX finds NVIDIA GPUs with its CUDA plugin: pip install 'srd[cuda]'"
        raise UsageError(f"no JAX device for platform {name!r}: {exc}{hint}") from exc


def plan_passes(model: ModelSettings) -> list[LoadedModel]:
    """The network passes for a noise level and scale: the family's own pass at that scale; for waifu2x's
    families 4x as two 2x passes (noise reduction on the first only); otherwise the next larger scale the
    family has, which `Engine` then downsizes (Lanczos) to the scale asked for. A community model file
    has one pass at its own scale: a smaller scale is that pass downsized, a power of it repeats it."""
    if is_community_model(model.name):
        return _community_passes(model)
    chain = _noise_then_scale(model)
    if chain is not None:
        return chain
    if model.scale == 1:
        if model.noise < 0:
            raise UsageError("scale 1 without noise reduction would do nothing; pass a noise level 0..3")
        return [load_step(model.name, model.noise, 1)]
    family = BUILTINS.get(model.name)
    natives = family.native_scales(model.noise) if family is not None else (2,)
    if model.scale in natives:
        return [load_step(model.name, model.noise, model.scale)]
    if family is None or family.chains_2x:
        first = load_step(model.name, model.noise, 2)
        return [first, first if model.noise < 0 else load_step(model.name, -1, 2)]
    larger = [scale for scale in natives if scale > model.scale]
    if not larger:
        raise ModelError(
            f"model {model.name!r} has no {model.scale}x or larger model with noise level {model.noise};"
            f" it offers {family.levels_text()}"
        )
    return [load_step(model.name, model.noise, larger[0])]


def _noise_then_scale(model: ModelSettings) -> list[LoadedModel] | None:
    """A waifu2x model folder without the combined noise-and-scale file but with the noise level's 1x file
    and the 2x file (vgg_7's art_y has noise1_model and scale2.0x_model): as waifu2x does, the 1x noise
    pass, then the 2x pass (twice for 3x and 4x: the 4x result is downsized for 3x). None otherwise."""
    folder = Path(model.name)
    if model.noise < 0 or model.scale < 2 or model.name in BUILTINS or not folder.is_dir():
        return None
    if folder_has_pass(folder, model.noise, 2) or not folder_has_pass(folder, model.noise, 1):
        return None
    if not folder_has_pass(folder, -1, 2):
        return None
    denoise, upscale = load_step(model.name, model.noise, 1), load_step(model.name, -1, 2)
    return [denoise, upscale] if model.scale == 2 else [denoise, upscale, upscale]


def _community_passes(model: ModelSettings) -> list[LoadedModel]:
    step = load_step(model.name, model.noise, model.scale)
    native = step.scale
    if model.scale <= native:
        return [step]
    passes, reached = [step], native
    while native > 1 and reached < model.scale:
        passes.append(step)
        reached *= native
    if reached != model.scale:
        raise UsageError(
            f"model {model.name} is {native}x: it can run at scale {native}, below it (then downsized), or"
            f" at a power of {native}, not at {model.scale}"
        )
    return passes


def check_engine(model: ModelSettings, settings: EngineSettings) -> list[str]:
    """Everything `Engine` checks before compiling, as problems with their keys (`srd check-config`): the
    model loads for this noise and scale, the device exists, the convolution algorithm can run there."""
    problems: list[str] = []
    try:
        plan_passes(model)
    except (ModelError, UsageError) as exc:
        problems.append(f"At 'model': {exc}")
    try:
        device = pick_device(settings.device)
    except UsageError as exc:
        return [*problems, f"At 'engine.device': {exc}"]
    try:
        conv_backend_for(settings, device.platform)
    except ValueError as exc:
        problems.append(f"At 'engine.conv': {exc}")
    return problems


def conv_backend_for(settings: EngineSettings, platform: str) -> ConvBackend:
    """The convolution backend the settings ask for on a platform: `resolve`'s, except that a network
    computing in bfloat16 or float16 (engine.precision) runs lax.conv ("auto" then means direct; the native
    and Winograd kernels are float32). ValueError where the two settings cannot go together."""
    if settings.precision == "float32":
        return resolve(settings.conv, platform)
    if settings.conv not in ("auto", "direct"):
        raise ValueError(
            f"engine.precision {settings.precision} runs with conv direct (or auto), not {settings.conv}"
        )
    return DIRECT


def default_tile(model: LoadedModel, platform: str) -> int:
    """The tile a pass runs with when engine.tile is unset: the model's default (srd.models.family), or on
    a GPU or TPU at least GPU_TILE for a network whose output does not depend on the tile (no global
    pooling, no zero padding: the result is the untiled one exactly), where big tiles keep the device busy.
    Tile-dependent families keep the tile their reference program uses, so results still match it."""
    spec = model.spec
    free = not spec.tile_dependent and not spec.keeps_size and model.pipeline.context is None
    if platform != "cpu" and free:
        return max(model.default_tile, GPU_TILE)
    return model.default_tile


class Engine:
    """Loads the models of a plan once, compiles them once per tile shape, and upscales images."""

    def __init__(self, model: ModelSettings, settings: EngineSettings | None = None) -> None:
        self.model = model
        self.settings = settings = settings if settings is not None else EngineSettings()
        self.passes = plan_passes(model)
        self._device = pick_device(settings.device)
        try:  # e.g. native-bf16 on a CPU without AMX: the settings' fault (the daemon exits 78)
            self.conv_backend: ConvBackend = conv_backend_for(settings, self._device.platform)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        self.conv_algorithm: ConvAlgorithm = self.conv_backend.name
        self._alpha_models: dict[str, LoadedModel] = {}
        self._runners: dict[str, TileRunner] = {}
        for step in self.passes:
            self._add_runner(step)

    def _add_runner(self, model: LoadedModel) -> None:
        settings = self.settings
        if model.label not in self._runners:
            self._runners[model.label] = TileRunner(
                model.spec,
                model.weights,
                self.tile_for(model),
                settings.batch,
                self._device,
                self.conv_backend,
                self.geometry_of(model),
                settings.precision,
            )

    @staticmethod
    def geometry_of(model: LoadedModel) -> TileGeometry:
        """How the pass's tiles are cut: the network's own geometry with its family's context, alignment,
        border and residual where the family sets them."""
        p = model.pipeline
        return TileGeometry.of(model.spec, p.context, p.align, p.border, add_input=p.add_input)

    def alpha_model(self, step: LoadedModel) -> LoadedModel:
        """The network that upscales alpha for a pass: its noise-free variant at the same scale
        (waifu2x's alpha_util.composite uses model2x), loaded on the first image with alpha; the pass
        itself when it is that already, or when the model has no noise-free variant."""
        if step.label not in self._alpha_models:
            model = step
            if step.noise >= 0 and step.scale > 1:
                try:
                    model = load_step(self.model.name, -1, step.spec.scale)
                except ModelError:
                    model = step
            self._add_runner(model)
            self._alpha_models[step.label] = model
        return self._alpha_models[step.label]

    def tile_runner(self, step: LoadedModel) -> TileRunner:
        """The compiled tile runner of one of the passes (a bench times its network alone)."""
        return self._runners[step.label]

    def tile_for(self, model: LoadedModel) -> int:
        """The configured tile, or the default for the model on this device (`default_tile`), aligned to
        what its downsampling (or its family) needs."""
        tile = self.settings.tile or default_tile(model, self._device.platform)
        return round_up(tile, self.geometry_of(model).align)

    @property
    def conv_description(self) -> str:
        """Which convolution path runs and why, for the start-up log line."""
        name, asked = self.conv_backend.name, self.settings.conv
        if asked != "auto":
            return f"{name} (engine.conv)"
        if self.settings.precision != "float32":
            return f"{name} (auto: engine.precision {self.settings.precision})"
        if name == "native":
            return "native (auto: srd's Winograd kernel on the CPU)"
        why = "not the CPU" if self._device.platform != "cpu" else "srd's native kernel was not built"
        return f"{name} (auto: {why})"

    @property
    def scale(self) -> int:
        """The scale the passes reach; `upscale` downsizes to the scale asked for where it differs."""
        return int(np.prod([step.scale for step in self.passes]))

    @property
    def model_id(self) -> str:
        return self.model.model_id

    @property
    def device(self) -> str:
        return f"{self._device.platform}:{self._device.id}"

    @property
    def trace_count(self) -> int:
        return sum(r.trace_count for r in self._runners.values())

    def warmup(self, *, every_shape: bool = False) -> None:
        """Compile each pass's full-tile shape now (the daemon does this before reporting READY);
        `every_shape` also compiles the edge-tile shapes."""
        for runner in self._runners.values():
            runner.warmup(every_shape=every_shape)

    def _shared(self, model: LoadedModel, image: Array32) -> SharedPools | None:
        """What the tiles of `image` share in this pass (Real-CUGAN's syncgap), or None."""
        names = model.pipeline.shared_pools
        if not names or self.model.syncgap == 0:
            return None
        runner = self._runners[model.label]
        key = f"{model.label} sample"
        if key not in self._runners:
            self._runners[key] = TileRunner(
                model.spec,
                model.weights,
                SAMPLE_TILE,
                1,
                self._device,
                self.conv_backend,
                runner.geometry,
                self.settings.precision,
            )
        return shared_pools(runner, self._runners[key], image, names, self.model.syncgap)

    def _alpha_is_bicubic(self, step: LoadedModel) -> bool:
        return step.pipeline.alpha is Alpha.BICUBIC and self.model.alpha == "reference"

    def _tiles(self, model: LoadedModel, height: int, width: int) -> int:
        p = model.pre_upscale
        return len(self._runners[model.label].positions(height * p, width * p))

    def tile_count(self, image: RasterImage) -> int:
        """How many network tiles `upscale(image)` runs: every pass, TTA's eight transforms and the alpha
        network included (the progress total; Real-CUGAN's syncgap samples are not counted)."""
        height, width = image.height, image.width
        runs = 8 if self.model.tta else 1
        total = 0
        for step in self.passes:
            total += runs * self._tiles(step, height, width)
            if image.alpha is not None and step.scale > 1 and not self._alpha_is_bicubic(step):
                total += runs * self._tiles(self.alpha_model(step), height, width)
            height, width = height * step.scale, width * step.scale
        return total

    def _tally(self, image: RasterImage, progress: ProgressFn | None) -> TileCounter | None:
        return None if progress is None else _TileTally(self.tile_count(image), progress).add

    def _run(self, model: LoadedModel, rgb: Array32, on_tiles: TileCounter | None = None) -> Array32:
        runner = self._runners[model.label]

        def network(image: Array32) -> Array32:
            return runner.upscale(image, self._shared(model, image), on_tiles)

        tta = self.model.tta
        if model.luminance:
            return upscale_luminance(network, rgb, pre_upscale=model.pre_upscale, tta=tta)
        return upscale_rgb(network, rgb, pre_upscale=model.pre_upscale, tta=tta)

    def _upscale_alpha(self, step: LoadedModel, alpha: Array32, on_tiles: TileCounter | None) -> Array32:
        if self._alpha_is_bicubic(step):
            # As the reference programs do: ncnn's bicubic Interp on each tile's alpha, tile by tile.
            tile = self._runners[step.label].tile
            return bicubic_per_tile(alpha, step.scale, tile)
        out = self._run(self.alpha_model(step), np.repeat(alpha[:, :, None], 3, axis=2), on_tiles)
        return np.asarray(out.mean(axis=2), np.float32)

    def can_stream(self, image: RasterImage, target_size: tuple[int, int] | None = None) -> bool:
        """Whether `upscale_bands` applies: one RGB pass without TTA, alpha, pre-upscale or resizing,
        the case of very large photos, where holding the whole float output would not fit in memory."""
        model = self.passes[0]
        return (
            len(self.passes) == 1
            and self.scale == self.model.scale
            and not self.model.tta
            and target_size is None
            and image.alpha is None
            and image.channels == 3
            and not model.luminance
            and model.pre_upscale == 1
        )

    def upscale_bands(self, image: RasterImage, progress: ProgressFn | None = None) -> Iterator[Array32]:
        """The upscaled pixels (clamped to 0..1) one band of rows at a time, top to bottom; only for
        images where `can_stream` holds. The results equal `upscale`'s; `progress` as for `upscale`."""
        if not self.can_stream(image):
            raise ValueError("upscale_bands needs a single RGB pass without TTA, alpha or resizing")
        step = self.passes[0]
        shared = self._shared(step, image.pixels)
        on_tiles = self._tally(image, progress)
        for band in self._runners[step.label].upscale_bands(image.pixels, shared, on_tiles):
            yield np.clip(band, 0.0, 1.0, out=band)

    def upscale(
        self,
        image: RasterImage,
        target_size: tuple[int, int] | None = None,
        progress: ProgressFn | None = None,
    ) -> RasterImage:
        """Upscale (or denoise) one image; `target_size` (width, height) downsizes the next 2^k result.
        `progress(done, total)` is called as network tiles finish (`tile_count` gives the total)."""
        rgb = image.pixels if image.channels == 3 else np.repeat(image.pixels, 3, axis=2)
        alpha = image.alpha
        on_tiles = self._tally(image, progress)
        for model in self.passes:
            if alpha is not None and model.pipeline.fill_transparent:
                rgb = fill_transparent(rgb, alpha, model.spec.context * model.spec.scale)
            rgb = self._run(model, rgb, on_tiles)
            if alpha is not None and model.scale > 1:
                alpha = np.clip(self._upscale_alpha(model, alpha, on_tiles), 0.0, 1.0)
        if target_size is None and self.scale != self.model.scale:
            target_size = (image.width * self.model.scale, image.height * self.model.scale)
        if target_size is not None:
            rgb, alpha = _resize_to(rgb, alpha, target_size)
        pixels = rgb if image.channels == 3 else rgb.mean(axis=2, keepdims=True, dtype=np.float32)
        return replace(image, pixels=np.ascontiguousarray(pixels, np.float32), alpha=alpha)


def _resize_to(rgb: Array32, alpha: Array32 | None, size: tuple[int, int]) -> tuple[Array32, Array32 | None]:
    width, height = size
    rgb = np.clip(resize_lanczos(rgb, width, height), 0.0, 1.0)
    if alpha is not None:
        alpha = np.clip(resize_lanczos(alpha[:, :, None], width, height)[:, :, 0], 0.0, 1.0)
    return rgb, alpha


def scale_for_target(width: int, height: int, target: tuple[int, int]) -> int:
    """The smallest of 1..4 whose result covers the target size (the engine then downsizes)."""
    for scale in (1, 2, 3, 4):
        if width * scale >= target[0] and height * scale >= target[1]:
            return scale
    raise UsageError(f"target size {target[0]}x{target[1]} needs more than 4x from {width}x{height}")
