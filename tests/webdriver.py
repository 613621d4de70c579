"""A small W3C WebDriver client for the console's browser tests, on the standard library.

It speaks the WebDriver protocol (JSON over HTTP, https://www.w3.org/TR/webdriver2/) to
Debian's ``chromedriver``, which drives Debian's headless ``chromium``: the same two programs
Selenium would drive, without Selenium. Why not Selenium: it installs trio, and wherever trio
is installed every pytest process imports it (anyio's plugin at load; hypothesis's plugin
through trio's ``hypothesis`` entry point). On the 2-core machine of benchmarks/RESULTS.md
(tenth session) that made 200 trivial tests take 1.71 s instead of 0.97 s with ``-n 0``, and
3.65 s instead of 2.08 s with ``-n 2``. The browser tests need a dozen commands, which fit
here, sent with the console tests' HTTP client (:func:`tests.http.call`).
"""

from __future__ import annotations

import base64
import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any, TypeVar

from tests.http import call

#: The key under which WebDriver names an element in its answers and arguments.
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"
#: Errors that mean "not on the page yet": a wait tries again instead of failing.
NOT_YET = frozenset({"no such element", "stale element reference"})
#: How long chromedriver may take to listen, and chromium to start (Selenium allows 120 s).
START_TIMEOUT_S = 120.0
#: How long a command may take beyond the page-load timeout, before the socket gives up.
COMMAND_MARGIN_S = 10.0
#: How often a wait asks the page again.
POLL_S = 0.1

T = TypeVar("T")


class WebDriverError(Exception):
    """An error answer of the WebDriver server: its error code and message."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error


class Element:
    """One element of the current page."""

    def __init__(self, browser: Browser, element_id: str) -> None:
        self._browser = browser
        self._path = f"/element/{element_id}"

    def find(self, selector: str, using: str = "css selector") -> Element:
        """The first element inside this one that ``selector`` matches."""
        return self._browser._find(self._path, selector, using)

    def click(self) -> None:
        self._browser._command("POST", self._path + "/click")

    def send_keys(self, text: str) -> None:
        self._browser._command("POST", self._path + "/value", text=text)

    @property
    def text(self) -> str:
        """The text a user sees in the element."""
        return str(self._browser._command("GET", self._path + "/text"))

    def is_selected(self) -> bool:
        return bool(self._browser._command("GET", self._path + "/selected"))

    def property(self, name: str) -> Any:
        """A DOM property (``src`` is the resolved, absolute URL)."""
        return self._browser._command("GET", f"{self._path}/property/{name}")


class Browser:
    """One WebDriver session on a ``chromedriver`` listening on a loopback port."""

    def __init__(self, port: int, session_id: str, command_timeout: float) -> None:
        self._port = port
        self._session = f"/session/{session_id}"
        self._timeout = command_timeout

    @classmethod
    @contextmanager
    def launched(
        cls, chromium: str, chromedriver: str, arguments: Sequence[str], page_load_s: float
    ) -> Iterator[Browser]:
        """Start ``chromedriver`` on an ephemeral port and a session of ``chromium``; end both.

        A page that takes longer than ``page_load_s`` to load fails the command.
        """
        driver = subprocess.Popen(
            [chromedriver, "--port=0", "--log-level=WARNING"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            port = _announced_port(driver)
            capabilities = {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": list(arguments)},
            }
            session = _request(
                port, "POST", "/session", {"capabilities": {"alwaysMatch": capabilities}},
                timeout=START_TIMEOUT_S,
            )  # fmt: skip
            browser = cls(port, session["sessionId"], page_load_s + COMMAND_MARGIN_S)
            try:
                browser._command("POST", "/timeouts", pageLoad=round(page_load_s * 1000))
                yield browser
            finally:
                browser._command("DELETE", "")
        finally:
            driver.terminate()
            try:
                driver.wait(timeout=COMMAND_MARGIN_S)
            except subprocess.TimeoutExpired:
                driver.kill()
                driver.wait()

    def get(self, url: str) -> None:
        """Load ``url`` and return once the page has loaded."""
        self._command("POST", "/url", url=url)

    def find(self, selector: str, using: str = "css selector") -> Element:
        """The first element of the page that ``selector`` matches."""
        return self._find("", selector, using)

    def execute(self, script: str, *arguments: Any) -> Any:
        """Run ``script`` (a function body) in the page and return what it returns."""
        return self._command("POST", "/execute/sync", script=script, args=list(arguments))

    def screenshot_png(self) -> bytes:
        return base64.b64decode(self._command("GET", "/screenshot"))

    def until(self, condition: Callable[[Browser], T], timeout: float) -> T:
        """Ask ``condition`` until it returns something true; fail after ``timeout`` seconds.

        Like Selenium's ``WebDriverWait``: an element not on the page yet counts as false.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = condition(self)
            except WebDriverError as error:
                if error.error not in NOT_YET:
                    raise
            else:
                if result:
                    return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page did not get there within {timeout} s")
            time.sleep(POLL_S)

    def _find(self, scope: str, selector: str, using: str) -> Element:
        """The first element under ``scope`` (an element's path; "": the page) matching."""
        found = self._command("POST", scope + "/element", using=using, value=selector)
        return Element(self, found[ELEMENT_KEY])

    def _command(self, method: str, path: str, **parameters: Any) -> Any:
        body = parameters if method == "POST" else None
        return _request(self._port, method, self._session + path, body, timeout=self._timeout)


def _announced_port(driver: subprocess.Popen[str]) -> int:
    """The port ``chromedriver`` says it listens on (it prints it once it does).

    A thread reads what it prints, to the end (a full pipe would block it); this waits
    :data:`START_TIMEOUT_S` at most for the line that names the port.
    """
    assert driver.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_forward, args=(driver.stdout, lines), daemon=True).start()
    said: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise RuntimeError(f"chromedriver did not listen within {START_TIMEOUT_S} s") from None
        if line is None:
            raise RuntimeError("chromedriver ended without listening: " + "".join(said))
        if "started successfully on port" in line:
            return int(line.rsplit(" ", 1)[1].rstrip(".\n"))
        said.append(line)


def _forward(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """Put each line of ``stream`` on ``lines``, then None at its end; close it."""
    with stream:
        for line in stream:
            lines.put(line)
    lines.put(None)


def _request(port: int, method: str, path: str, body: object = None, *, timeout: float) -> Any:
    """One WebDriver command; its ``value``, or :class:`WebDriverError` for an error answer."""
    answer = call(f"http://127.0.0.1:{port}", method, path, body, timeout=timeout)
    status, text = answer.status, answer.body
    try:
        value = json.loads(text)["value"]
    except (ValueError, KeyError, TypeError):
        raise WebDriverError(f"HTTP {status}", text.decode("utf-8", "replace")) from None
    if status >= 400:
        if isinstance(value, dict):
            error = str(value.get("error", f"HTTP {status}"))
            raise WebDriverError(error, str(value.get("message", "")))
        raise WebDriverError(f"HTTP {status}", str(value))
    return value
