"""End to end: the service on a real socket, its page in headless Chromium (Debian's ``chromium`` and
``chromium-driver``; no browser is downloaded), a photo uploaded through the file input, and what the
page then shows read back from its DOM and canvas."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1300,900")

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the test extra) is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn (the serve extra) is not installed")
pytest.importorskip("starlette", reason="starlette (the serve extra) is not installed")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(f"headless browser test: {CHROMIUM} and {CHROMEDRIVER} are not installed "
                "(apt-get install chromium chromium-driver; .ci/run does)", allow_module_level=True)


@pytest.fixture(scope="module")
def base_url(real_pool):
    """The service on a free loopback port, in a thread of this process."""
    from hyperface.serve import create_app

    config = uvicorn.Config(create_app(real_pool), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the service did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait_for(driver, script: str, timeout: float = 60.0):
    """The first truthy value of ``script`` (JavaScript returning a value) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


def test_a_photo_dropped_on_the_page_shows_its_face_drawn_with_the_json(base_url, browser, tmp_path):
    from selenium.webdriver.common.by import By

    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("not a photo")
    browser.get(base_url)
    assert browser.title == "hyperface"
    browser.find_element(By.ID, "files").send_keys(f"{asset_path(EXAMPLE_IMAGE)}\n{not_an_image}")
    _wait_for(browser, "return [...document.querySelectorAll('section.result')]"
                       ".every(s => s.dataset.status !== 'pending')")

    photo = browser.find_element(By.CSS_SELECTOR, f'section.result[data-name="{EXAMPLE_IMAGE}"]')
    assert photo.get_attribute("data-status") == "done"
    assert photo.get_attribute("data-faces") == "1"
    assert photo.find_element(By.CSS_SELECTOR, ".summary").text.startswith("1 face · 512×512")
    record = json.loads(photo.find_element(By.CSS_SELECTOR, "pre.json").get_attribute("textContent"))
    face = record["faces"][0]  # the page's line says what the JSON says
    line = photo.find_element(By.CSS_SELECTOR, "ol.faces li").text
    assert f"· {face['gender']} {face['gender_probability']:.2f} ·" in line
    assert record["input"] == EXAMPLE_IMAGE and len(record["faces"]) == 1

    # the canvas holds the photo (at the column's width), with the face's box drawn in the box colour
    canvas = photo.find_element(By.TAG_NAME, "canvas")
    scale = float(canvas.get_attribute("data-scale"))
    assert canvas.get_attribute("data-drawn") == "1"
    assert int(canvas.get_attribute("width")) == int(canvas.get_attribute("height")) == round(512 * scale)
    x0, y0, x1, y1 = (v * scale for v in record["faces"][0]["box"])
    greenest = browser.execute_script(  # of the 3 x 3 pixels around each point
        "const [c, pts] = arguments; const ctx = c.getContext('2d');"
        "return pts.map(([x, y]) => { const d = ctx.getImageData(x - 1, y - 1, 3, 3).data; let best = null;"
        "  for (let i = 0; i < d.length; i += 4) { const p = Array.from(d.slice(i, i + 4));"
        "    if (!best || p[1] - p[0] - p[2] > best[1] - best[0] - best[2]) best = p; } return best; });",
        canvas, [[round((x0 + x1) / 2), round(y1)], [round(x0), round((y0 + y1) / 2)], [round(x1), round(y1) - 5]])
    for r, g, b, a in greenest:  # on the box's bottom, left and right edges: the box green (40, 220, 40)
        assert g > 180 and g - max(r, b) > 60 and a == 255, greenest  # anti-aliased: partly the photo
    centre = browser.execute_script(  # the photo itself is there too (not the blank canvas)
        "const [c, x, y] = arguments; return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data);",
        canvas, round(100 * scale), round(400 * scale))
    assert centre[3] == 255 and centre[:3] != [0, 0, 0]

    bad = browser.find_element(By.CSS_SELECTOR, 'section.result[data-name="notes.jpg"]')
    assert bad.get_attribute("data-status") == "error"
    assert bad.find_element(By.CSS_SELECTOR, ".summary").text.startswith("415: not an image")


def test_the_mirrored_view_box_asks_for_it_only_when_ticked(base_url, browser):
    """An unticked checkbox leaves the option out (the server's default), a ticked one sends it."""
    from selenium.webdriver.common.by import By

    browser.get(base_url)
    assert browser.execute_script("return queryString()") == ""
    browser.find_element(By.NAME, "detector_flip").click()
    browser.find_element(By.NAME, "min_face").send_keys("40")
    assert browser.execute_script("return queryString()") == "?min_face=40&detector_flip=true"
    browser.find_element(By.NAME, "detector_flip").click()
    assert browser.execute_script("return queryString()") == "?min_face=40"
