"""Pillow images of the colour modes srd does not upscale directly (CMYK, LAB, YCbCr, ...) turned into RGB
or gray, through LittleCMS (PIL.ImageCms) where the file's ICC profile says how."""

from __future__ import annotations

import io

from PIL import Image, ImageCms

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
SRGB_ICC = _SRGB.tobytes()
# Modes Pillow converts itself, to what; their colour meaning is unchanged.
_PLAIN = {"1": "L", "La": "LA", "RGBa": "RGBA", "RGBX": "RGB", "YCbCr": "RGB", "HSV": "RGB", "LAB": "RGB"}


def _cmyk_to_srgb(im: Image.Image, icc: bytes) -> Image.Image | None:
    """CMYK through its ICC profile to sRGB, or None when the profile does not fit (not a CMYK profile)."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if profile.profile.xcolor_space.strip() != "CMYK":
            return None
        transform = ImageCms.buildTransform(profile, _SRGB, "CMYK", "RGB", ImageCms.Intent.PERCEPTUAL)
        converted = ImageCms.applyTransform(im, transform)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None
    return converted


def to_upscalable(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """`im` in a mode decode.py reads (L, LA, RGB, RGBA, P, PA, I, I;16*, F) and the ICC profile that now
    describes it.

    CMYK (JPEG's Adobe CMYK and YCCK arrive as CMYK, already un-inverted by Pillow) goes through its
    embedded profile to sRGB with perceptual intent, and the output then carries the sRGB profile; without
    a profile no colour management is possible and Pillow's plain CMYK->RGB is used. LAB is Pillow's
    CIELAB D50 conversion to sRGB.
    """
    mode = im.mode
    if mode == "CMYK":
        converted = _cmyk_to_srgb(im, icc) if icc else None
        if converted is not None:
            return converted, SRGB_ICC
        return im.convert("RGB"), None
    if mode in _PLAIN:
        target = _PLAIN[mode]
        keep_icc = icc if mode in ("1", "La", "RGBa", "RGBX") else None
        return im.convert(target), keep_icc
    return im, icc
