"""A real headless Chromium (Debian's `chromium` + `chromium-driver`) driven by Selenium, for the
WebRTC preview tests and benchmark. Nothing is downloaded: the driver and browser are the
system's, given by path (Selenium Manager is never asked)."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def available() -> str | None:
    """None when the browser can run here, else why not (for pytest.skip)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e .[webrtc,dev])"
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not os.access(exe, os.X_OK):
            return f"{exe} missing (apt-get install chromium chromium-driver)"
    return None


@contextmanager
def chromium(fake_mic_wav: str | None = None, width: int = 1280, height: int = 900, nice: int = 15):
    """A headless Chromium (Selenium WebDriver) with fake media devices and autoplay allowed;
    fake_mic_wav: a WAV file the fake microphone plays (looped). The browser's processes run at
    the given niceness. Quits on exit; its profile lives in a temp dir of its own."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="dhlive-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              "--autoplay-policy=no-user-gesture-required", "--mute-audio",
              "--no-first-run", "--disable-background-networking", "--disable-component-update",
              "--disable-features=WebRtcHideLocalIpsWithMdns", f"--user-data-dir={profile}",
              f"--window-size={width},{height}"):
        opts.add_argument(a)
    if fake_mic_wav:
        opts.add_argument(f"--use-file-for-fake-audio-capture={fake_mic_wav}")
    # niceness is inherited: the driver and every browser process start below it
    service = Service(executable_path=CHROMEDRIVER, log_output=os.devnull,
                      popen_kw={"preexec_fn": lambda: os.nice(nice)} if nice else {})
    driver = webdriver.Chrome(service=service, options=opts)
    try:
        yield driver
    finally:
        try:
            driver.quit()
        finally:
            shutil.rmtree(profile, ignore_errors=True)
