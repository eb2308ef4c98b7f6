"""The status page at work, for docs/web.md: a real daemon and `srd web` on the gallery's pictures, one
job slowed (test fault injection) so it is in flight, one file that is not an image, and Chromium taking
the pictures (Playwright, as tests/e2e/test_web_browser.py drives it).

    python bench/web_screenshot.py          # -> docs/screens/web-dashboard.png, web-compare.png
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from gallery import default_photo, gradient_noise, jpeg_damaged, line_art, text  # noqa: E402
from PIL import Image  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from support.daemon import DaemonProcess, status, wait_for, write_config  # noqa: E402
from support.web import WebProcess  # noqa: E402


def _drop(inbox: Path) -> int:
    """The gallery's pictures into the inbox (a subfolder too); returns how many are images."""
    pictures = {"line-art.png": line_art(), "scans/text.png": text(), "gradient.png": gradient_noise()}
    pictures["scans/line-art-q25.jpg"] = jpeg_damaged(line_art())
    if (photo := default_photo()) is not None:
        pictures["photos/chelsea.png"] = Image.open(photo).convert("RGB").resize((226, 150))
    for name, image in pictures.items():
        (inbox / name).parent.mkdir(parents=True, exist_ok=True)
        image.save(inbox / name)
        time.sleep(0.3)  # finish one by one, as a person's drops would
    (inbox / "notes.txt.png").write_text("this is a text file with an image's name\n")
    return len(pictures)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screens")
    parser.add_argument(
        "--browser", default=shutil.which("chromium-headless-shell") or shutil.which("chromium")
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="srd-web-shot-"))
    config = write_config(
        root, root / "jax-cache", watch={"settle_seconds": 0.3}, web={"listen": "127.0.0.1:0"}
    )
    daemon = DaemonProcess(config, env={"SRD_TEST_FAULT": "slow_tiles:big.png"}).wait_ready()
    web = WebProcess(config).wait_listening()
    try:
        images = _drop(root / "inbox")
        wait_for(lambda: status(root).get("done") == images and status(root).get("failed") == 1, 120, "jobs")
        line_art().resize((384, 384)).save(root / "inbox" / "big.png")
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=args.browser)
            page = browser.new_page(viewport={"width": 1200, "height": 1000}, device_scale_factor=1)
            page.goto(web.url + "/")
            page.locator("#in-flight .job", has_text="left").wait_for(timeout=60_000)
            wait_for(lambda: page.evaluate("[...document.images].every(i => i.complete)"), 30, "thumbnails")
            page.screenshot(path=str(args.out / "web-dashboard.png"), full_page=True)
            page.locator("#recent .card.done", has_text="line-art.png").first.locator(".pair").click()
            page.locator("#cmp-slider").fill("45")
            page.locator(".viewer-box").screenshot(path=str(args.out / "web-compare.png"))
            browser.close()
    finally:
        web.stop()
        daemon.stop()
    for name in ("web-dashboard.png", "web-compare.png"):  # a 256-colour palette: a third of the bytes
        shot = Image.open(args.out / name).convert("RGB")
        shot.quantize(256, method=Image.Quantize.FASTOCTREE).save(args.out / name, optimize=True)
    print(f"wrote {args.out / 'web-dashboard.png'} and {args.out / 'web-compare.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
