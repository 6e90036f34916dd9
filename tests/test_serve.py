"""`faceanon serve`: the page's API through FastAPI's test client, and the page itself end to end
in headless Chromium (Debian's `chromium` and `chromium-driver`)."""
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from faceanon.serve import create_app  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "city.jpg"


@pytest.fixture()
def app(tmp_path):
    work = tmp_path / "uploads"
    work.mkdir()
    return create_app(max_upload_mb=5, workdir=work)


def _post(client, data: bytes, name: str, **query):
    return client.post("/anonymize", params={"name": name, **query}, content=data)


def test_a_photo_is_anonymized_fetched_once_and_nothing_is_kept(app):
    client = TestClient(app)
    assert 'id="method"' in client.get("/").text
    r = _post(client, SAMPLE.read_bytes(), "city.jpg", method="pixelate", param="blocks=6")
    assert r.status_code == 200, r.text
    data = r.json()
    assert len(data["faces"]) >= 10 and all(len(f["box"]) == 4 for f in data["faces"])
    out = client.get(data["result"])
    assert out.status_code == 200
    before = np.asarray(Image.open(SAMPLE).convert("RGB"), np.int16)
    after = np.asarray(Image.open(__import__("io").BytesIO(out.content)).convert("RGB"), np.int16)
    assert after.shape == before.shape and np.abs(after - before).mean() > 0.5
    assert client.get(data["result"]).status_code == 404  # served once
    assert list(app.state.workdir.iterdir()) == []  # upload and result deleted
    assert app.state.workdir.stat().st_mode & 0o777 == 0o700


def test_bad_uploads_get_one_line_and_leave_nothing(app):
    client = TestClient(app)
    cases = [(b"not an image at all", "broken.jpg", 400, "broken.jpg"),
             (b"hello", "notes.txt", 400, "not a photo or video"),
             (b"", "empty.png", 400, "empty"),
             (b"\0" * (6 << 20), "huge.png", 413, "upload limit")]
    for data, name, status, words in cases:
        r = _post(client, data, name)
        assert r.status_code == status, (name, r.text)
        message = r.json()["error"]
        assert words in message and "\n" not in message and "Traceback" not in message
    r = _post(client, SAMPLE.read_bytes(), "city.jpg", method="blur", param="k=-3")
    assert r.status_code == 400 and "k" in r.json()["error"]
    assert list(app.state.workdir.iterdir()) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_page_in_headless_chromium(tmp_path):
    """Upload the sample through the page's file input, wait for the result, check that the
    'after' image differs from the 'before' one, and save a screenshot
    (FACEANON_SCREENSHOT=docs/serve.png refreshes the one in docs/)."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        if os.environ.get("FACEANON_REQUIRE_BROWSER"):
            pytest.fail("chromium and chromium-driver are required (apt-get install chromium chromium-driver)")
        pytest.skip("chromium / chromedriver not installed")
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    port = _free_port()
    (tmp_path / "up").mkdir()
    server = uvicorn.Server(uvicorn.Config(create_app(workdir=tmp_path / "up"), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.1)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        browser.find_element(By.ID, "method").send_keys("pixelate")
        browser.find_element(By.ID, "file").send_keys(str(SAMPLE))
        browser.find_element(By.ID, "go").click()
        WebDriverWait(browser, 120).until(lambda b: b.execute_script("return document.body.dataset.state") == "done")
        WebDriverWait(browser, 30).until(lambda b: b.execute_script(
            "const i = document.querySelector('#after img'); return i && i.complete && i.naturalWidth > 0"))
        # Mean change inside the detected faces between the page's 'before' and 'after' images
        # (the method at its default strength), and outside them.
        inside, outside, width = browser.execute_script("""
            function pixels(img) { const c = document.createElement('canvas'); c.width = img.naturalWidth;
              c.height = img.naturalHeight; const g = c.getContext('2d'); g.drawImage(img, 0, 0);
              return [g.getImageData(0, 0, c.width, c.height).data, c.width, c.height]; }
            const [a, w, h] = pixels(document.querySelector('#before img'));
            const [b] = pixels(document.querySelector('#after img'));
            const face = new Uint8Array(w * h);
            for (const f of window.faces) { const [x1, y1, x2, y2] = f.box.map(Math.round);
              for (let y = Math.max(0, y1); y < Math.min(h, y2); y++) for (let x = Math.max(0, x1); x < Math.min(w, x2); x++) face[y * w + x] = 1; }
            let din = 0, nin = 0, dout = 0, nout = 0;
            for (let k = 0; k < w * h; k++) { const d = Math.abs(a[4 * k] - b[4 * k]);
              if (face[k]) { din += d; nin++; } else { dout += d; nout++; } }
            return [din / nin, dout / nout, w];""")
        assert width == Image.open(SAMPLE).width
        assert inside > 8 and outside < 3  # the faces changed, the rest (JPEG aside) did not
        assert "face(s) anonymized with pixelate" in browser.find_element(By.ID, "message").text
        shot = Path(os.environ.get("FACEANON_SCREENSHOT") or tmp_path / "serve.png")
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10000
    finally:
        browser.quit()
        server.should_exit = True
        thread.join(timeout=10)
