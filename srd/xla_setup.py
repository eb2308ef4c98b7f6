"""XLA flags srd wants on CPU, set before JAX is first imported (XLA reads them once, at start-up)."""

from __future__ import annotations

import os
import sys

# YNNPACK kernels for the convolutions' dot products: about 3x faster lax.conv on x86 CPUs, same results
# to 1e-5 (the equivalence tests run with it on). SRD_XLA_DEFAULTS=0 leaves XLA_FLAGS untouched.
_CPU_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=dot",)


def apply_default_xla_flags() -> None:
    """Append srd's CPU flags to XLA_FLAGS unless the user set them or opted out."""
    if os.environ.get("SRD_XLA_DEFAULTS", "1") == "0" or "jax" in sys.modules:
        return
    current = os.environ.get("XLA_FLAGS", "")
    names = {flag.split("=", 1)[0] for flag in current.split()}
    extra = [flag for flag in _CPU_FLAGS if flag.split("=", 1)[0] not in names]
    if extra:
        os.environ["XLA_FLAGS"] = " ".join([current, *extra]).strip()
