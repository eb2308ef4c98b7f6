"""The cost `srd models` lists for each family is what srd.nn.cost counts on its graphs."""

from __future__ import annotations

import pytest

from srd.cli.models import models_command
from srd.models import BUILTINS, load_step
from srd.nn.cost import gflop_per_output_mpx

CASES = [(name, scale, gflop) for name, family in BUILTINS.items() for scale, gflop in family.gflop_per_mpx]


def test_every_family_and_scale_has_a_cost() -> None:
    """Each built-in family states a cost for each scale it has a pass for."""
    for family in BUILTINS.values():
        assert {scale for _, scale in family.levels} == {scale for scale, _ in family.gflop_per_mpx}


@pytest.mark.parametrize(("name", "scale", "gflop"), CASES)
def test_stated_cost_is_the_counted_cost(name: str, scale: int, gflop: float) -> None:
    """The stated GFLOP per output megapixel equals the count from the pass's graph (within 0.1%)."""
    family = BUILTINS[name]
    noise = min(n for n, s in family.levels if s == scale)
    model = load_step(name, noise, scale)
    assert gflop_per_output_mpx(model.spec, model.weights) == pytest.approx(gflop, rel=1e-3)


def test_a_transposed_convolution_counts_its_real_taps() -> None:
    """upconv_7 (six 3x3 convolutions, then a 4x4 stride-2 transposed one) costs what its layers add up
    to by hand: 9 * (3*16 + 16*32 + 32*64 + 64*128 + 128*128 + 128*256) MACs per input pixel and
    16 * 256 * 3 per input pixel for the last layer, over 4 output pixels per input pixel."""
    model = load_step("upconv7-art", -1, 2)
    macs = 9 * (3 * 16 + 16 * 32 + 32 * 64 + 64 * 128 + 128 * 128 + 128 * 256) + 16 * 256 * 3
    assert gflop_per_output_mpx(model.spec, model.weights) == pytest.approx(2 * macs / 4 / 1e3, rel=0.01)


def test_models_lists_every_family_with_cost_and_licence(capsys: pytest.CaptureFixture[str]) -> None:
    """`srd models` names each built-in with its passes, licence and GFLOP per megapixel."""
    assert models_command() == 0
    out = capsys.readouterr().out
    for name, family in BUILTINS.items():
        assert name in out and family.levels_text() in out
    assert "realcugan-se" in out and "GFLOP per output megapixel: 2x 386, 3x 357, 4x 134" in out
