"""A headless Chromium driven through its WebDriver (selenium, Debian's chromium and
chromium-driver), kept off every network but this machine's loopback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

# Records what the page's websockets receive (the app's terminal output, as text) in
# window.__received, so a test can read what the served app drew: xterm.js paints on a
# canvas, and the screen's text is nowhere in the DOM.
RECORD_WEBSOCKETS = r"""
(() => {
  const Native = window.WebSocket;
  window.__received = "";
  const decoder = new TextDecoder("utf-8", {fatal: false});
  window.WebSocket = function (url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    ws.addEventListener("message", (e) => {
      let text = "";
      if (typeof e.data === "string") text = e.data;
      else if (e.data instanceof ArrayBuffer) text = decoder.decode(new Uint8Array(e.data));
      window.__received = (window.__received + text).slice(-2000000);
    });
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
})();
"""


def available() -> str | None:
    """Why a browser test cannot run here, or None when it can."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            return f"{path} is missing (apt-get install chromium chromium-driver; .ci/run does)"
    try:
        import selenium  # noqa: F401
        import textual_serve  # noqa: F401
    except ImportError as e:
        return f"{e.name} is missing (pip install -e '.[dev]')"
    return None


def chromium(user_data_dir: Path, size: tuple[int, int] = (1400, 900)):
    """A headless Chromium that talks to nothing but 127.0.0.1."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--metrics-recording-only",
        # Every host name but loopback fails to resolve: the page's web font and anything
        # else off this machine are never fetched.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--user-data-dir={user_data_dir}",
        f"--window-size={size[0]},{size[1]}",
    ):
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root otherwise
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_WEBSOCKETS})
    return driver
