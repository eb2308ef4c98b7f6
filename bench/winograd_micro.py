"""One 3x3 layer: direct (YNNPACK), Winograd F(m x m, 3 x 3) in jnp, and srd's native F(6x6) kernel
(float32, and bfloat16 on each of AMX and AVX512-BF16 this CPU has).

Run from the repository root: ``python bench/winograd_micro.py [--size 260] [--cin 128] [--cout 256]
[--blocks 32 64]``.
Each variant is compiled with its own YNNPACK fusion setting (jit compiler_options), warmed up, then the
variants run in turn ``--rounds`` times and the best time of each counts, so load from other processes
hits all of them alike. Prints milliseconds, direct-convolution-equivalent GFLOP/s and max error.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import numpy as np

from srd.runtime import configure_runtime

configure_runtime()  # XLA_FLAGS before JAX starts

import jax  # noqa: E402 -- after configure_runtime()
import jax.numpy as jnp  # noqa: E402 -- after configure_runtime()
from jax import lax  # noqa: E402 -- after configure_runtime()

from srd.nn.conv import native  # noqa: E402 -- after configure_runtime()
from srd.nn.conv.winograd_transforms import transform_kernel, winograd_conv3x3  # noqa: E402 -- after configure_runtime()

_DIMS = ("NHWC", "HWIO", "NHWC")
_YNN = "xla_cpu_experimental_ynn_fusion_type"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=260, help="input height and width")
    parser.add_argument("--cin", type=int, default=128)
    parser.add_argument("--cout", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--blocks",
        type=int,
        nargs="*",
        default=[],
        help="also time the native kernel with these tiles per block (its default: half the L2 cache)",
    )
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((1, args.size, args.size, args.cin), dtype=np.float32))
    w = (rng.standard_normal((3, 3, args.cin, args.cout)) / np.sqrt(9 * args.cin)).astype(np.float32)
    wj = jnp.asarray(w)

    def direct(x: jax.Array) -> jax.Array:
        return lax.conv_general_dilated(x, wj, (1, 1), "VALID", dimension_numbers=_DIMS)

    variants: dict[str, Callable[[jax.Array], jax.Array]] = {
        "direct ynn=dot": jax.jit(direct, compiler_options={_YNN: "LIBRARY_FUSION_TYPE_DOT"}),
    }
    for m in (4, 6):
        u = jnp.asarray(transform_kernel(w, m))
        for label, fusion in (("eigen", ""), ("ynn=individual_dot", "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT")):
            variants[f"F({m}) {label}"] = jax.jit(
                lambda x, u=u, m=m: winograd_conv3x3(x, u, m), compiler_options={_YNN: fusion}
            )
    if native.available():
        packed = jnp.asarray(native.pack_kernel(w))
        variants["F(6) native (srd/_native)"] = jax.jit(lambda x: native.conv3x3(x, packed, None, args.cout))
        for block in args.blocks:
            variants[f"F(6) native, block {block}"] = jax.jit(
                lambda x, block=block: native.conv3x3(x, packed, None, args.cout, block=block)
            )
        packed16 = jnp.asarray(native.pack_kernel_bf16(w))
        for isa in native.BF16_ISAS:
            if not native.isa_supported(isa):
                continue
            variants[f"F(6) native-bf16 {isa}"] = jax.jit(
                lambda x, isa=isa: native.conv3x3(x, packed16, None, args.cout, isa=isa)
            )
            for block in args.blocks:
                variants[f"F(6) bf16 {isa}, block {block}"] = jax.jit(
                    lambda x, isa=isa, block=block: native.conv3x3(
                        x, packed16, None, args.cout, isa=isa, block=block
                    )
                )
    ref = np.asarray(variants["direct ynn=dot"](x))
    errors = {name: float(np.abs(np.asarray(f(x)) - ref).max()) for name, f in variants.items()}
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(args.rounds):
        for name, f in variants.items():
            # One untimed call first: the variant timed right after a slow one otherwise paid for waking
            # the pool's threads and refilling the caches (the first native row read 10-60% slow).
            f(x).block_until_ready()
            started = time.perf_counter()
            f(x).block_until_ready()
            best[name] = min(best[name], time.perf_counter() - started)
    flops = 2 * (args.size - 2) ** 2 * 9 * args.cin * args.cout
    for name, seconds in best.items():
        rate = flops / seconds / 1e9
        print(f"{name:<26}{seconds * 1e3:9.1f} ms{rate:8.1f} GFLOP/s   err {errors[name]:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
