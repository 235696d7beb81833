"""pytest plugin: names the test that leaked memory, when running under LeakSanitizer.

LeakSanitizer normally reports leaks once, at exit, with no idea which test made
them. Loaded into a pytest run under AddressSanitizer (``tools/memcheck.py asan``
adds ``-p leak_attribution``), this plugin calls ``__lsan_do_recoverable_leak_check()``
after each test's teardown and compares the report with what earlier checks had
already shown. A new (or grown) leak is attributed to the test just finished:

* a leak with a stack frame in microcrad fails that test at teardown, with the
  LeakSanitizer report as the error text, so it appears in pytest's own output;
* every new leak, ours or not, is written to
  ``$MICROCRAD_MEMCHECK_DIR/leak-attribution.<pid>.jsonl`` for memcheck's verdict.

Outside a sanitizer run (no ``__lsan_do_recoverable_leak_check`` in the process)
the plugin does nothing, so loading it is always safe.

Each check scans the whole heap, so it costs a few milliseconds per test.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Generator, Optional

import pytest

_ROOT = Path(__file__).resolve().parent.parent


def _load_memcheck() -> ModuleType:
    """tools/memcheck.py, whose report parser this plugin shares."""
    spec = importlib.util.spec_from_file_location("microcrad_memcheck", _ROOT / "tools" / "memcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: its dataclasses look their module up by name.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _symbol(library: Optional[ctypes.CDLL], name: str) -> Any:
    try:
        return getattr(library, name) if library is not None else None
    except AttributeError:
        return None


def _log_path_option(options: str) -> Optional[str]:
    """The log_path= entry of a sanitizer option string, if any."""
    for item in options.replace(",", ":").split(":"):
        if item.startswith("log_path="):
            return item[len("log_path="):]
    return None


class LeakAttribution:
    """Runs the leak checks and keeps track of the leaks already reported."""

    def __init__(self, check: Any, report_prefix: str, out_dir: Path) -> None:
        self._check = check
        self._check.restype = ctypes.c_int
        self._log = Path(f"{report_prefix}.{os.getpid()}")
        self._out = out_dir / f"leak-attribution.{os.getpid()}.jsonl"
        self._memcheck = _load_memcheck()
        # Leak signature -> the headline last seen for it ("Direct leak of N byte(s)
        # in M object(s)"), so a leak that grows is noticed again.
        self._seen: dict[tuple[Any, ...], str] = {}
        self.leaky_tests: list[str] = []
        self._ubsan_redirected = False

    def redirect_ubsan(self) -> None:
        """Sends UBSan's reports to a file next to ASan's.

        With gcc, UBSan is a separate runtime (libubsan, loaded with the library) that
        ignores log_path when ASan is present, so its reports would go to stderr, where
        pytest's capture swallows them when UBSan aborts the process.
        """
        if self._ubsan_redirected:
            return
        try:
            ubsan = ctypes.CDLL("libubsan.so.1", mode=os.RTLD_NOLOAD)
        except OSError:
            return  # not loaded (yet): the library may not have been imported so far
        set_path = _symbol(ubsan, "__sanitizer_set_report_path")
        if set_path is not None:
            set_path.argtypes = [ctypes.c_char_p]
            set_path(str(self._out.parent / "ubsan").encode())
            self._ubsan_redirected = True

    def after_test(self, nodeid: str) -> list[Any]:
        """Checks for leaks; returns the findings new since the previous check."""
        self.redirect_ubsan()
        gc.collect()  # Values in reference cycles are not leaks, merely uncollected yet
        start = self._log.stat().st_size if self._log.exists() else 0
        if self._check() == 0:
            return []
        with open(self._log, "rb") as file:
            file.seek(start)
            text = file.read().decode(errors="replace")
        new = []
        for finding in self._memcheck.parse_sanitizer_text(text, str(self._log)):
            if finding.tool != "lsan":
                continue
            key = finding.signature()
            if self._seen.get(key) == finding.headline:
                continue  # reported again by this check, but not grown
            self._seen[key] = finding.headline
            new.append(finding)
            with open(self._out, "a") as out:
                out.write(json.dumps({"test": nodeid, "tool": key[0], "kind": key[1],
                                      "stack": list(key[2]), "headline": finding.headline,
                                      "ours": finding.ours}) + "\n")
        if any(f.ours for f in new):
            self.leaky_tests.append(nodeid)
        return new


_STATE = pytest.StashKey[LeakAttribution]()


def pytest_configure(config: pytest.Config) -> None:
    process = ctypes.CDLL(None)
    check = _symbol(process, "__lsan_do_recoverable_leak_check")
    if check is None:
        return  # not running under LeakSanitizer
    out_dir = Path(os.environ.get("MICROCRAD_MEMCHECK_DIR") or tempfile.mkdtemp(
        prefix="leak-attribution-"))
    prefix = _log_path_option(os.environ.get("ASAN_OPTIONS", ""))
    if prefix is None:
        # Reports go to stderr, which pytest captures: send them to a file instead.
        prefix = str(out_dir / "asan")
        set_path = _symbol(process, "__sanitizer_set_report_path")
        set_path.argtypes = [ctypes.c_char_p]
        set_path(prefix.encode())
    config.stash[_STATE] = LeakAttribution(check, prefix, out_dir)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """After a test's teardown, runs the leak check and fails the test if it leaked."""
    outcome = yield
    state = item.config.stash.get(_STATE, None)
    if state is None or call.when != "teardown":
        return
    new = state.after_test(item.nodeid)
    ours = [finding for finding in new if finding.ours]
    if not ours:
        return
    report = outcome.get_result()
    text = "".join(finding.report for finding in ours)
    report.outcome = "failed"
    report.longrepr = (f"LeakSanitizer: {len(ours)} new leak(s) with a stack in microcrad "
                       f"after {item.nodeid}:\n\n{text}")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    if state.leaky_tests:
        terminalreporter.section("leaks attributed by LeakSanitizer")
        for nodeid in state.leaky_tests:
            terminalreporter.write_line(f"leaked: {nodeid}")
    else:
        terminalreporter.write_line("leak_attribution: no leak in microcrad after any test")
