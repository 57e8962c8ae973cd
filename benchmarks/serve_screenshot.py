"""A screenshot of ``hyperface serve``'s page after photos are uploaded (the README's docs/serve.png).

Starts the service (as ``benchmarks/serve_load.py`` does), opens its page in Debian's headless
Chromium (``apt-get install chromium chromium-driver``), uploads the photos through the page's file
input, waits until each is drawn, and saves a PNG of the window.

    python benchmarks/serve_screenshot.py [PHOTO ...] [--out docs/serve.png] [--width 1280 --height 1000]

Default photos: the bundled astronaut.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from serve_load import start_service

from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/serve.png"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args(argv)
    photos = [p.resolve() for p in args.photos] or [asset_path(EXAMPLE_IMAGE)]

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    proc, url = start_service(workers=1, threads=1, queue=None)
    try:
        with tempfile.TemporaryDirectory() as profile:
            options = webdriver.ChromeOptions()
            options.binary_location = "/usr/bin/chromium"
            for flag in (*FLAGS, f"--window-size={args.width},{args.height}", f"--user-data-dir={profile}"):
                options.add_argument(flag)
            driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
            try:
                driver.get(url)
                for photo in reversed(photos):  # the page shows the latest first: the first photo on top
                    driver.find_element(By.ID, "files").send_keys(str(photo))
                    deadline = time.monotonic() + 120
                    while driver.execute_script("return document.querySelector('section.result').dataset.status")\
                            == "pending":
                        if time.monotonic() > deadline:
                            raise SystemExit(f"{photo}: no answer within 120 s")
                        time.sleep(0.2)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(args.out))
            finally:
                driver.quit()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
