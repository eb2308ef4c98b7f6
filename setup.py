"""Build srd's one native piece: the Winograd convolution kernel, an XLA FFI custom call (srd/_native).

Everything else about the package is in pyproject.toml. The extension needs a C++17 compiler and the XLA
FFI headers that jaxlib ships (a build requirement). It is optional: where it cannot be built, srd
installs without it and runs every convolution with lax.conv (`native.available()` is then False).
"""

from pathlib import Path

import jaxlib
from setuptools import Extension, setup

NATIVE = Path("srd") / "_native"

winograd = Extension(
    "srd._winograd",
    sources=[
        str(NATIVE / name)
        for name in ("winograd_ffi.cc", "wino_avx512.cc", "wino_avx2.cc", "wino_generic.cc")
    ],
    depends=[str(NATIVE / name) for name in ("wino_kernel.inc", "wino_layer.h")],
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

setup(ext_modules=[winograd])
