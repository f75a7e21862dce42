"""A headless Chromium driven over the Chrome DevTools protocol on a pipe (``--remote-debugging-pipe``).

No websocket and no package beyond the standard library: Chromium reads JSON commands on its fd 3 and
writes replies and events on its fd 4, each message ended by a NUL byte. :func:`find_or_install_chromium`
finds the browser, installing Debian's ``chromium`` with apt-get when it is missing and this process is
root. :class:`Browser` opens a page, records console errors, exceptions, failed loads and every request
that leaves the machine, and takes full-page screenshots.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
LOCAL_SCHEMES = ("data:", "file:", "about:", "blob:", "chrome:", "devtools:")


def _which() -> str | None:
    for n in _NAMES:
        p = shutil.which(n)
        if p:
            return p
    return None


def find_or_install_chromium() -> tuple[str | None, str]:
    """(path to a Chromium, "") or (None, why there is none)."""
    found = _which()
    if found:
        return found, ""
    if not shutil.which("apt-get"):
        return None, "chromium is not installed and there is no apt-get to install it"
    if os.geteuid() != 0:
        return None, "chromium is not installed and installing it (apt-get install chromium) needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        for cmd, limit in ((["apt-get", "update"], 300), (["apt-get", "install", "-y", "--no-install-recommends", "chromium"], 900)):
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=limit, check=False)
            if proc.returncode != 0:
                return None, f"`{' '.join(cmd)}` failed: {proc.stderr.strip()[-300:]}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"installing chromium failed: {exc}"
    found = _which()
    return (found, "") if found else (None, "apt-get installed chromium but no chromium binary is on PATH")


class Browser:
    """One headless Chromium process; :meth:`open` loads a page in a fresh tab and returns what happened."""

    def __init__(self, binary: str, width: int = 1280, height: int = 900) -> None:
        self.width, self.height = width, height
        self._profile = tempfile.mkdtemp(prefix="gnndyn-chromium-")
        to_r, self._to_w = os.pipe()
        self._from_r, from_w = os.pipe()

        def wire() -> None:  # in the child: fd 3 = commands in, fd 4 = replies out
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        args = [binary, "--headless=new", "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
                "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--allow-file-access-from-files", "--hide-scrollbars", f"--window-size={width},{height}",
                # nothing may be fetched; block any attempt too (it is still recorded as a request)
                "--host-resolver-rules=MAP * ~NOTFOUND", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        self._proc = subprocess.Popen(args, preexec_fn=wire, close_fds=False, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        self._buf = b""
        self._id = 0
        self._events: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------------------ protocol
    def _read_message(self, timeout: float) -> dict[str, Any]:
        import select

        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from chromium")
            ready, _, _ = select.select([self._from_r], [], [], left)
            if ready:
                chunk = os.read(self._from_r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed its debugging pipe")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read_message(timeout)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def _wait_event(self, method: str, session: str, timeout: float = 60) -> dict:
        for i, e in enumerate(self._events):
            if e.get("method") == method and e.get("sessionId") == session:
                return self._events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            e = self._read_message(max(deadline - time.monotonic(), 0.01))
            if e.get("method") == method and e.get("sessionId") == session:
                return e
            self._events.append(e)

    # ------------------------------------------------------------------------------------ pages
    def open(self, path: Path, screenshot: Path | None = None) -> dict[str, Any]:
        """Load ``path``; return console errors, exceptions, failed loads, non-local requests, the images'
        decode results, the page's width against the window's, and save a full-page PNG to ``screenshot``."""
        self._events.clear()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=s)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False}, session=s)
        self.send("Page.navigate", {"url": path.resolve().as_uri()}, session=s)
        self._wait_event("Page.loadEventFired", s)
        images = self.send("Runtime.evaluate", {
            "expression": "Promise.all([...document.images].map(i => i.decode().then("
                          "() => ({ok: i.naturalWidth > 0, w: i.naturalWidth, alt: i.alt}), "
                          "() => ({ok: false, w: 0, alt: i.alt}))))",
            "awaitPromise": True, "returnByValue": True}, session=s)["result"]["value"]
        layout = self.send("Runtime.evaluate", {
            "expression": "({page: document.documentElement.scrollWidth, window: window.innerWidth, "
                          "height: document.documentElement.scrollHeight, title: document.title})",
            "returnByValue": True}, session=s)["result"]["value"]
        if screenshot is not None:
            h = min(int(layout["height"]), 12000)
            self.send("Emulation.setDeviceMetricsOverride",
                      {"width": self.width, "height": h, "deviceScaleFactor": 1, "mobile": False}, session=s)
            png = self.send("Page.captureScreenshot", {"format": "png"}, session=s)["data"]
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(png))
        self.send("Runtime.evaluate", {"expression": "1"}, session=s)  # drain events queued before now
        events = [e for e in self._events if e.get("sessionId") == s]
        console = [e["params"] for e in events if e.get("method") == "Runtime.consoleAPICalled"
                   and e["params"].get("type") in ("error", "assert", "warning")]
        exceptions = [e["params"]["exceptionDetails"] for e in events if e.get("method") == "Runtime.exceptionThrown"]
        log_errors = [e["params"]["entry"] for e in events if e.get("method") == "Log.entryAdded"
                      and e["params"]["entry"].get("level") == "error"]
        requests = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
        failed = [e["params"] for e in events if e.get("method") == "Network.loadingFailed"]
        self.send("Target.closeTarget", {"targetId": target})
        return {"console": console, "exceptions": exceptions, "log_errors": log_errors, "failed_loads": failed,
                "remote_requests": [u for u in requests if not u.startswith(LOCAL_SCHEMES)], "requests": requests,
                "images": images, "layout": layout}

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for fd in (self._to_w, self._from_r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)
