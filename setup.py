"""Build srd's native pieces (srd/_native): the Winograd convolution kernel, an XLA FFI custom call, the
PNG row filter and the float-to-integer quantiser.

Everything else about the package is in pyproject.toml. The Winograd extension needs a C++17 compiler and
the XLA FFI headers that jaxlib ships (a build requirement); the other two need a C compiler. All are
optional: where one cannot be built, srd installs without it and uses its pure Python/JAX equivalent
(lax.conv for every convolution, numpy for PNG filtering and quantising), which gives the same results
more slowly. SRD_NATIVE_KERNEL=0 leaves the Winograd kernel out (it runs on the CPU only; a GPU machine's
install, bench/gpu_check.sh, skips its minute of compiling).
"""

import os
from pathlib import Path

import jaxlib
from setuptools import Extension, setup

NATIVE = Path("srd") / "_native"

winograd = Extension(
    "srd._winograd",
    sources=[
        str(NATIVE / name)
        for name in (
            "winograd_ffi.cc",
            "wino_amx.cc",
            "wino_avx512bf16.cc",
            "wino_avx512.cc",
            "wino_avx2.cc",
            "wino_generic.cc",
        )
    ],
    depends=[
        str(NATIVE / name)
        for name in ("wino_kernel.inc", "patch_kernel.inc", "direct_kernel.inc", "wino_layer.h")
    ],
    include_dirs=[str(Path(jaxlib.__file__).parent / "include")],
    language="c++",
    extra_compile_args=[
        "-O3",
        "-std=gnu++17",
        "-fvisibility=hidden",
        "-ffp-contract=fast",  # a*b + c as one FMA in the matmul and transforms
        "-fno-signed-zeros",  # lets `vf{} + s` be a plain broadcast
        "-Wno-attributes",  # XLA's headers mark templates always_inline
    ],
    optional=True,
)

png_filter = Extension(
    "srd._pngfilter",
    sources=[str(NATIVE / "png_filter.c")],
    extra_compile_args=["-O3", "-fvisibility=hidden"],
    optional=True,
)

quantize = Extension(
    "srd._quantize",
    sources=[str(NATIVE / "quantize.c")],
    # x * maxv, then + 0.5 (no FMA); floorf vectorised (exception flags aside, the same results)
    extra_compile_args=["-O3", "-fvisibility=hidden", "-ffp-contract=off", "-fno-trapping-math"],
    optional=True,
)

native = [winograd] if os.environ.get("SRD_NATIVE_KERNEL", "1") != "0" else []
setup(ext_modules=[*native, png_filter, quantize])
