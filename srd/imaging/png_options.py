"""The PNG writer's options by name, without zlib or numpy: what the settings schema offers and checks
(srd.imaging.png maps each strategy name to zlib-ng's constant)."""

from __future__ import annotations

STRATEGY_NAMES = ("rle", "filtered", "default", "huffman")
DEFAULT_STRATEGY = "rle"
DEFAULT_LEVEL = 4
