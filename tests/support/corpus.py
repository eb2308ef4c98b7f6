"""Image files of every format and mode srd reads, generated with Pillow (and by hand where Pillow cannot
write the format: PSD, 16-bit colour PNG, YCCK JPEG, CUR), with the reference conversion of each to what srd
upscales."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageCms

from srd.imaging.formats import BY_NAME

SIZE = (24, 20)
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def noise(mode: str, seed: int = 0, size: tuple[int, int] = SIZE) -> Image.Image:
    """A noisy image in `mode`, with some fully transparent and half transparent pixels where it has alpha."""
    rng = np.random.default_rng(seed)
    w, h = size
    if mode in ("I;16", "I"):
        gray16 = Image.fromarray(rng.integers(0, 65536, (h, w)).astype(np.uint16))
        return gray16 if mode == "I;16" else gray16.convert(mode)
    if mode == "F":
        return Image.fromarray(rng.uniform(-0.1, 1.1, (h, w)).astype(np.float32), "F")
    base = Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), "RGBA")
    if mode in ("LA", "RGBA", "PA"):
        alpha = np.asarray(base)[..., 3].copy()
        alpha[:4] = 0
        alpha[4:8] = 128
        alpha[8:12] = 255
        base.putalpha(Image.fromarray(alpha))
    if mode == "P":
        return base.convert("RGB").quantize(64)
    if mode == "CMYK":
        return Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), "CMYK")
    if mode in ("LAB", "YCbCr"):
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), mode)
    return base.convert(mode)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def cmyk_profile() -> bytes:
    """A small ICC v2 CMYK printer profile (an 8-bit A2B0 lookup table to Lab), which no package here ships:
    its colours differ from Pillow's plain CMYK->RGB, so a test sees whether srd went through it."""
    grid = 2
    clut = bytearray()
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    L = 100 * (1 - k) * (1 - 0.35 * c - 0.45 * m - 0.1 * y)
                    a = 70 * m - 35 * c
                    b = 80 * y - 40 * c - 20 * m
                    clut += bytes([round(max(0, L) * 255 / 100), round(a + 128), round(b + 128)])
    ramp = bytes(range(256))
    lut = b"mft1" + bytes(4) + bytes([4, 3, grid, 0])
    lut += b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    lut += ramp * 4 + bytes(clut) + ramp * 3
    wtpt = b"XYZ " + bytes(4) + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    desc_text = b"srd test CMYK\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(desc_text)) + desc_text + bytes(4 + 4 + 2 + 1 + 67)
    tags = [(b"A2B0", lut), (b"wtpt", wtpt), (b"desc", desc)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        padded = data + bytes(-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(padded))
        body += padded
    size = offset + len(body)
    header = struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"prtr" + b"CMYK" + b"Lab "
    header += bytes(12) + b"acsp" + b"APPL" + bytes(4) + bytes(8) + bytes(8) + struct.pack(">I", 0)
    header += _s15(0.9642) + _s15(1.0) + _s15(0.8249) + bytes(4)
    header += bytes(128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + body


CMYK_ICC = cmyk_profile()


def png16(samples: npt.NDArray[np.uint16]) -> bytes:
    """An unfiltered 16-bit PNG of H x W x C samples, written independently of srd."""
    H, W, C = samples.shape
    raw = b"".join(b"\x00" + row.tobytes() for row in samples.astype(">u2"))
    ihdr = struct.pack(">IIBBBBB", W, H, 16, {1: 0, 2: 4, 3: 2, 4: 6}[C], 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def tiff16(samples: npt.NDArray[np.uint16]) -> bytes:
    """An uncompressed little-endian 16-bit RGB or RGBA TIFF (one strip right after the header), written
    independently of srd."""
    H, W, C = samples.shape
    pixels = np.ascontiguousarray(samples, "<u2").tobytes()
    ifd_at = 8 + len(pixels)
    tags = [(256, 4, 1, W), (257, 4, 1, H), (258, 3, C, 0), (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, 8)]
    tags += [(277, 3, 1, C), (278, 4, 1, H), (279, 4, 1, len(pixels)), (284, 3, 1, 1)]
    tags += [(338, 3, 1, 2)] if C == 4 else []
    bits_at = ifd_at + 2 + 12 * len(tags) + 4
    entries = b""
    for tag, kind, count, value in tags:
        if tag == 258:  # C shorts do not fit the entry: stored after the IFD
            entries += struct.pack("<HHII", tag, kind, count, bits_at)
        elif kind == 4:
            entries += struct.pack("<HHII", tag, kind, count, value)
        else:
            entries += struct.pack("<HHIHH", tag, kind, count, value, 0)
    ifd = struct.pack("<H", len(tags)) + entries + b"\0\0\0\0"
    return b"II*\0" + struct.pack("<I", ifd_at) + pixels + ifd + struct.pack(f"<{C}H", *[16] * C)


def psd(rgb: npt.NDArray[np.uint8]) -> bytes:
    """A minimal RGB Photoshop file (no layers, raw planar composite), which Pillow cannot write."""
    H, W, _ = rgb.shape
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, H, W, 8, 3)
    sections = struct.pack(">III", 0, 0, 0)  # colour mode data, image resources, layers: all empty
    planes = b"".join(np.ascontiguousarray(rgb[..., c]).tobytes() for c in range(3))
    return header + sections + struct.pack(">H", 0) + planes


Planes = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]


def _jpeg_ycc(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """JFIF's RGB -> YCbCr (ITU-R BT.601, full range), as libjpeg's encoder computes it."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168735892 * r - 0.331264108 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418687589 * g - 0.081312411 * b + 128
    return np.stack([y, cb, cr], -1).round().clip(0, 255).astype(np.uint8)


def ycck_jpeg(cmyk: npt.NDArray[np.uint8], icc: bytes | None = None, *, transform: int = 2) -> bytes:
    """A YCCK JPEG (Adobe APP14 transform 2, as Photoshop writes CMYK) that decodes to the CMYK samples
    `cmyk` (H x W x 4, in Pillow's CMYK convention), which Pillow cannot write itself.

    libjpeg decodes YCCK by turning Y, Cb, Cr into R, G, B and taking C, M, Y = 255 - R, G, B (K as stored),
    and Pillow un-inverts Adobe CMYK: so C, M, Y are stored as the YCbCr of (C, M, Y) and K as 255 - K.
    Pillow writes a CMYK JPEG with Adobe transform 0 and inverted samples; the components it stores are
    255 minus what it is given, and the transform byte is patched to 2 afterwards (`transform` 0 leaves
    the same components marked as plain CMYK: what a reader that ignored the marker would see).
    """
    stored = np.concatenate([_jpeg_ycc(cmyk[..., :3]), 255 - cmyk[..., 3:]], axis=-1)
    options: dict[str, object] = {"quality": 98}
    if icc is not None:
        options["icc_profile"] = icc
    data = bytearray(saved(Image.fromarray((255 - stored).astype(np.uint8), "CMYK"), "JPEG", **options))
    at = data.find(b"\xff\xee")  # APP14: marker, length, "Adobe", version, flags0, flags1, transform
    assert at > 0 and data[at + 4 : at + 9] == b"Adobe" and data[at + 15] == 0
    data[at + 15] = transform
    return bytes(data)


def smooth_cmyk(size: tuple[int, int] = SIZE) -> npt.NDArray[np.uint8]:
    """CMYK ramps (smooth, so a JPEG of them stays within a few levels of every sample)."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = [x / (w - 1), y / (h - 1), (x + y) / (w + h - 2), 0.5 + 0.25 * np.sin(x / 3)]
    return (np.stack(planes, -1) * 255).round().clip(0, 255).astype(np.uint8)


def cur_file(
    im: Image.Image, sizes: list[tuple[int, int]], hotspot: tuple[int, int], bitmap_format: str
) -> bytes:
    """A CUR cursor of `im` at `sizes` (PNG or 32-bit BMP images), which Pillow cannot write: Pillow's ICO
    with the header's type set to 2 and each entry's planes and bit count replaced by the hotspot."""
    data = bytearray(saved(im, "ICO", sizes=sizes, bitmap_format=bitmap_format))
    assert data[:4] == b"\x00\x00\x01\x00"
    data[2] = 2
    (count,) = struct.unpack_from("<H", data, 4)
    for index in range(count):
        struct.pack_into("<HH", data, 6 + 16 * index + 4, *hotspot)
    return bytes(data)


@dataclass(frozen=True)
class Case:
    """One input file: its name, bytes, and the Pillow mode it is compared in after decoding."""

    name: str
    data: bytes
    # "RGB", "RGBA", "L", "LA", "I;16" (16-bit gray), "F", "RGB16"/"RGBA16" (by hand), "CMS" (CMYK + ICC)
    reference_mode: str
    lossy: bool = False
    options: dict[str, object] = field(default_factory=dict)


def saved(im: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **options)  # type: ignore[arg-type]
    return out.getvalue()


def still_cases() -> list[Case]:
    """Every still format and mode of issue 13, as files."""
    rng = np.random.default_rng(7)
    rgb16 = rng.integers(0, 65536, (SIZE[1], SIZE[0], 3)).astype(np.uint16)
    rgba16 = rng.integers(0, 65536, (SIZE[1], SIZE[0], 4)).astype(np.uint16)
    palette_trns = noise("P", 3)
    trns = bytes([0, 128] + [255] * 62)
    cases = [
        Case("png-1.png", saved(noise("1"), "PNG"), "L"),
        Case("png-L.png", saved(noise("L"), "PNG"), "L"),
        Case("png-LA.png", saved(noise("LA"), "PNG"), "LA"),
        Case("png-P4.png", saved(noise("RGB").quantize(16), "PNG", bits=4), "RGB"),
        Case("png-P2.png", saved(noise("RGB").quantize(4), "PNG", bits=2), "RGB"),
        Case(
            "png-P-trns.png",
            saved(palette_trns, "PNG", transparency=trns),
            "RGBA",
        ),
        Case("png-RGB.png", saved(noise("RGB"), "PNG", icc_profile=SRGB), "RGB"),
        Case("png-RGBA.png", saved(noise("RGBA"), "PNG"), "RGBA"),
        Case("png-I16.png", saved(noise("I;16"), "PNG"), "I;16"),
        Case("png-RGB16.png", png16(rgb16), "RGB16"),
        Case("png-RGBA16.png", png16(rgba16), "RGBA16"),
        Case("jpeg-L.jpg", saved(noise("L"), "JPEG"), "L", lossy=True),
        Case("jpeg-RGB.jpg", saved(noise("RGB"), "JPEG", icc_profile=SRGB), "RGB", lossy=True),
        Case("jpeg-CMYK.jpg", saved(noise("CMYK"), "JPEG"), "RGB", lossy=True),
        Case("jpeg-CMYK-icc.jpg", saved(noise("CMYK"), "JPEG", icc_profile=CMYK_ICC), "CMS", lossy=True),
        Case("tiff-CMYK-icc.tif", saved(noise("CMYK"), "TIFF", icc_profile=CMYK_ICC), "CMS"),
        Case("jpeg-YCCK.jpg", ycck_jpeg(smooth_cmyk()), "RGB", lossy=True),
        Case("jpeg-YCCK-icc.jpg", ycck_jpeg(smooth_cmyk(), CMYK_ICC), "CMS", lossy=True),
        Case("jpeg-YCbCr.jpg", saved(noise("YCbCr"), "JPEG"), "RGB", lossy=True),
        Case("tiff-1.tif", saved(noise("1"), "TIFF"), "L"),
        Case("tiff-L.tif", saved(noise("L"), "TIFF"), "L"),
        Case("tiff-LA.tif", saved(noise("LA"), "TIFF"), "LA"),
        Case("tiff-P.tif", saved(noise("P"), "TIFF"), "RGB"),
        Case("tiff-RGB.tif", saved(noise("RGB"), "TIFF", compression="tiff_lzw"), "RGB"),
        Case("tiff-RGBA.tif", saved(noise("RGBA"), "TIFF"), "RGBA"),
        Case("tiff-CMYK.tif", saved(noise("CMYK"), "TIFF"), "RGB"),
        Case("tiff-RGB16.tif", tiff16(rgb16), "RGB16"),
        Case("tiff-RGBA16.tif", tiff16(rgba16), "RGBA16"),
        Case("tiff-I16.tif", saved(noise("I;16"), "TIFF"), "I;16"),
        Case("tiff-I.tif", saved(noise("I"), "TIFF"), "I;16"),
        Case("tiff-F.tif", saved(noise("F"), "TIFF"), "F"),
        Case("tiff-LAB.tif", saved(noise("LAB"), "TIFF"), "RGB"),
        Case("tiff-YCbCr.tif", saved(noise("YCbCr"), "TIFF"), "RGB"),
        Case("bmp-1.bmp", saved(noise("1"), "BMP"), "L"),
        Case("bmp-L.bmp", saved(noise("L"), "BMP"), "L"),
        Case("bmp-P.bmp", saved(noise("P"), "BMP"), "RGB"),
        Case("bmp-RGB.bmp", saved(noise("RGB"), "BMP"), "RGB"),
        Case("gif-P.gif", saved(noise("P"), "GIF"), "RGB"),
        Case("gif-trns.gif", saved(palette_trns, "GIF", transparency=0), "RGBA"),
        Case("ico-RGBA.ico", saved(noise("RGBA", size=(24, 24)), "ICO", sizes=[(16, 16), (24, 24)]), "RGBA"),
        Case("psd-RGB.psd", psd(np.asarray(noise("RGB"))), "RGB"),
        Case("pbm-1.pbm", saved(noise("1"), "PPM"), "L"),
        Case("pgm-L.pgm", saved(noise("L"), "PPM"), "L"),
        Case("pgm-16.pgm", saved(noise("I;16"), "PPM"), "I;16"),
        Case("ppm-RGB.ppm", saved(noise("RGB"), "PPM"), "RGB"),
        Case("tga-L.tga", saved(noise("L"), "TGA"), "L"),
        Case("tga-LA.tga", saved(noise("LA"), "TGA"), "LA"),
        Case("tga-P.tga", saved(noise("P"), "TGA"), "RGB"),
        Case("tga-RGBA.tga", saved(noise("RGBA"), "TGA", compression="tga_rle"), "RGBA"),
        Case("jp2-L.jp2", saved(noise("L"), "JPEG2000"), "L"),
        Case("jp2-RGBA.jp2", saved(noise("RGBA"), "JPEG2000"), "RGBA"),
        Case("jp2-I16.jp2", saved(noise("I;16"), "JPEG2000"), "I;16"),
        Case("webp-RGB.webp", saved(noise("RGB"), "WEBP", quality=90), "RGB", lossy=True),
        Case("webp-RGBA.webp", saved(noise("RGBA"), "WEBP", lossless=True, exact=True), "RGBA"),
    ]
    if BY_NAME["avif"].available:  # Pillow's wheels have AVIF from 11.2 on
        cases.append(Case("avif-RGB.avif", saved(noise("RGB"), "AVIF", quality=90), "RGB", lossy=True))
    return cases


def reference(data: bytes, mode: str) -> Planes:
    """The pixels (H x W x C in 0..1) and alpha srd should decode `data` to, by Pillow's own conversion (and
    by plain unpacking for the hand-written 16-bit colour PNGs)."""
    if mode in ("RGB16", "RGBA16"):
        channels = 4 if mode == "RGBA16" else 3
        if data.startswith(b"II*"):  # tiff16's layout: the samples right after the header
            (ifd_at,) = struct.unpack("<I", data[4:8])
            width, height = (
                struct.unpack("<I", data[ifd_at + 10 : ifd_at + 14])[0],
                struct.unpack("<I", data[ifd_at + 22 : ifd_at + 26])[0],
            )
            samples = np.frombuffer(data[8:ifd_at], "<u2").reshape(height, width, channels) / np.float32(
                65535
            )
            samples = samples.astype(np.float32)
            alpha = np.ascontiguousarray(samples[..., 3]) if channels == 4 else None
            return np.ascontiguousarray(samples[..., :3]), alpha
        return _png16_reference(data, channels)
    with Image.open(io.BytesIO(data)) as opened:
        im = opened.convert("RGB") if opened.mode == "LAB" else opened
        if mode == "CMS":  # CMYK through its embedded profile to sRGB, perceptual
            profile = ImageCms.ImageCmsProfile(io.BytesIO(opened.info["icc_profile"]))
            srgb = ImageCms.createProfile("sRGB")
            transform = ImageCms.buildTransform(profile, srgb, "CMYK", "RGB", ImageCms.Intent.PERCEPTUAL)
            im, mode = ImageCms.applyTransform(opened, transform), "RGB"
            assert im is not None
        if mode == "I;16":
            arr = np.clip(np.asarray(im).astype(np.int64), 0, 65535).astype(np.float32) / 65535
            return arr[..., None], None
        if mode == "F":
            return np.clip(np.asarray(im, np.float32), 0, 1)[..., None], None
        arr = np.asarray(im.convert(mode), np.float32) / 255
    arr = arr[..., None] if arr.ndim == 2 else arr
    if mode in ("LA", "RGBA"):
        alpha = arr[..., -1]
        return np.ascontiguousarray(arr[..., :-1]), None if bool((alpha == 1).all()) else alpha
    return arr, None


def _png16_reference(
    data: bytes, channels: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
    ihdr = data[16:24]
    width, height = struct.unpack(">II", ihdr)
    body = data[33 + 8 : -12 - 4]
    raw = np.frombuffer(zlib.decompress(body), np.uint8).reshape(height, -1)[:, 1:]
    samples = raw.copy().view(">u2").reshape(height, width, channels).astype(np.float32) / 65535
    if channels == 4:
        return np.ascontiguousarray(samples[..., :3]), np.ascontiguousarray(samples[..., 3])
    return samples, None
