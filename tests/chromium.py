"""Headless Chromium driven over the DevTools protocol: pages load, images decode, no errors."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = next((p for n in ("chromium", "chromium-browser") if (p := shutil.which(n))), None)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
]


class DevTools:
    """A minimal Chrome DevTools Protocol client on one page target."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        self.ws.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == number:
                assert "error" not in message, message
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str) -> dict[str, Any]:
        while True:
            message = json.loads(self.ws.recv())
            self.events.append(message)
            if message.get("method") == method:
                return message

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def close(self) -> None:
        self.ws.close()


LOAD_ALL_IMAGES = """(async () => {
  const images = [...document.images];
  for (const img of images) {
    img.scrollIntoView();
    if (!img.complete) await new Promise(done => { img.onload = img.onerror = done; });
    try { await img.decode(); } catch (e) {}
  }
  return images.map(img => [img.currentSrc || img.src, img.naturalWidth]);
})()"""


def open_page(browser: DevTools, url: str, shot: Path) -> list[list[Any]]:
    """Navigate, load every image, keep a screenshot; return [src, naturalWidth] per image."""
    browser.events.clear()
    browser.call("Page.navigate", url=url)
    browser.wait_for("Page.loadEventFired")
    images = browser.evaluate(LOAD_ALL_IMAGES)
    browser.evaluate("window.scrollTo(0, 0)")
    png = browser.call("Page.captureScreenshot", format="png")["data"]
    shot.write_bytes(base64.b64decode(png))
    return images


def problems(browser: DevTools) -> list[str]:
    """Console errors, exceptions, failed loads and non-file requests seen since navigation."""
    found = []
    for event in browser.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            found.append(f"console: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            found.append(f"exception: {params.get('exceptionDetails')}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url')}")
        elif method == "Network.loadingFailed":
            found.append(f"failed: {params.get('errorText')}")
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith(("file:", "data:")):
                found.append(f"external request: {url}")
    return found


@contextlib.contextmanager
def running_browser(profile: Path) -> Iterator[DevTools]:
    """Start Chromium with a fresh profile folder; yield a DevTools client on its page."""
    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get update && apt-get install -y chromium)")
    pytest.importorskip("websocket", reason="pip install websocket-client")
    process = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
            assert process.poll() is None, "chromium exited at start"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
            targets = json.load(reply)
        page = next(t for t in targets if t["type"] == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            tools.call(f"{domain}.enable")
        yield tools
        tools.close()
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
            process.wait()
