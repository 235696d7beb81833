"""pytest plugin: names the test that leaked memory, when running under LeakSanitizer.

LeakSanitizer normally reports leaks once, at exit, with no idea which test made
them. Loaded into a pytest run under AddressSanitizer (``tools/memcheck.py asan``
adds ``-p leak_attribution``), this plugin calls ``__lsan_do_recoverable_leak_check()``
between tests and compares its report with what earlier checks had shown. A new (or
grown) leak belongs to the tests run since the previous check:

* a leak with a stack frame in microcrad fails the last of those tests at teardown,
  with the LeakSanitizer report as the error text, so it shows in pytest's output;
* every new leak, ours or not, is written to
  ``$MICROCRAD_MEMCHECK_DIR/leak-attribution.<pid>.jsonl`` for memcheck's verdict.

How often it checks is set by ``$MICROCRAD_LEAK_CHECK``:

``test`` (the default)
    after every test: each leak is pinned on one test. A check scans the whole heap,
    which in a pytest process with numpy and Hypothesis loaded takes 0.1-0.4 s, so
    this is for a few test files at a time.
``module``
    after the last test of each test file: cheap enough for the whole suite. A leak
    is then known to come from one of that file's tests; ``tools/memcheck.py`` uses
    this mode for whole-suite runs and, when a leak turns up, re-runs just the files
    concerned with ``test`` to pin it.
``off``
    never (the plugin stays loaded but inert).

Outside a sanitizer run (no ``__lsan_do_recoverable_leak_check`` in the process) the
plugin does nothing, so loading it is always safe.
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
MODE_VARIABLE = "MICROCRAD_LEAK_CHECK"
MODES = ("test", "module", "off")


def _load_memcheck() -> ModuleType:
    """tools/memcheck.py, whose report parser this plugin shares."""
    spec = importlib.util.spec_from_file_location(
        "microcrad_memcheck", _ROOT / "tools" / "memcheck.py")
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

    def __init__(self, check: Any, report_prefix: str, out_dir: Path, mode: str) -> None:
        self.mode = mode
        self._check = check
        self._check.restype = ctypes.c_int
        self._log = Path(f"{report_prefix}.{os.getpid()}")
        self._out = out_dir / f"leak-attribution.{os.getpid()}.jsonl"
        self._memcheck = _load_memcheck()
        # Leak signature -> the headline last seen for it ("Direct leak of N byte(s)
        # in M object(s)"): LSan reports every leak again at each check, and a leak
        # that has grown since is new.
        self._seen: dict[tuple[Any, ...], str] = {}
        self._since_check: list[str] = []  # tests run since the previous check
        self.leaky: list[str] = []  # descriptions of the tests blamed, for the summary
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

    def after_test(self, item: pytest.Item, last_in_module: bool) -> list[Any]:
        """Notes a finished test; checks for leaks when the mode says so.

        Returns the leak findings that are new since the previous check.
        """
        self.redirect_ubsan()
        self._since_check.append(item.nodeid)
        if self.mode == "off" or (self.mode == "module" and not last_in_module):
            return []
        tests, self._since_check = self._since_check, []
        return self.check(tests, str(item.path))

    def final_check(self) -> None:
        """A last check once every test and fixture is done, and a mark that it ran.

        Leaks that LeakSanitizer reports only at exit, after this, were made while the
        interpreter shut down: objects still alive then are not guaranteed to be
        finalized, so a Value held until the end (say, by a test's parameters) may keep
        its node forever. memcheck reads the mark and does not count those against
        microcrad; everything leaked while tests ran has been seen by then.
        """
        if self.mode == "off":
            return
        tests, self._since_check = self._since_check, []
        self.check(tests or ["(session teardown)"], "")
        with open(self._out, "a") as out:
            out.write(json.dumps({"final": True}) + "\n")

    def check(self, tests: list[str], module: str) -> list[Any]:
        """Runs a leak check; records and returns the leaks new since the last one,
        blaming them on `tests` (the tests run since then, in `module`)."""
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
                out.write(json.dumps({
                    "tests": tests, "exact": len(tests) == 1, "module": module,
                    "tool": key[0], "kind": key[1], "stack": list(key[2]),
                    "headline": finding.headline, "ours": finding.ours}) + "\n")
        if any(f.ours for f in new):
            self.leaky.append(tests[0] if len(tests) == 1 else
                              f"one of the {len(tests)} tests of {module}")
        return new


_STATE = pytest.StashKey[LeakAttribution]()
_LAST_IN_MODULE = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    process = ctypes.CDLL(None)
    check = _symbol(process, "__lsan_do_recoverable_leak_check")
    if check is None:
        return  # not running under LeakSanitizer
    mode = os.environ.get(MODE_VARIABLE, "test")
    if mode not in MODES:
        raise pytest.UsageError(f"${MODE_VARIABLE} must be one of {', '.join(MODES)}, "
                                f"not {mode!r}")
    out_dir = Path(os.environ.get("MICROCRAD_MEMCHECK_DIR") or tempfile.mkdtemp(
        prefix="leak-attribution-"))
    prefix = _log_path_option(os.environ.get("ASAN_OPTIONS", ""))
    if prefix is None:
        # Reports go to stderr, which pytest captures: send them to a file instead.
        prefix = str(out_dir / "asan")
        set_path = _symbol(process, "__sanitizer_set_report_path")
        set_path.argtypes = [ctypes.c_char_p]
        set_path(prefix.encode())
    config.stash[_STATE] = LeakAttribution(check, prefix, out_dir, mode)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: Optional[pytest.Item]) -> None:
    """Notes whether this is the last test of its file (known only at teardown)."""
    item.stash[_LAST_IN_MODULE] = nextitem is None or nextitem.path != item.path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """After a test's teardown, checks for leaks and fails the test if ours appeared."""
    outcome = yield
    state = item.config.stash.get(_STATE, None)
    if state is None or call.when != "teardown":
        return
    new = state.after_test(item, item.stash.get(_LAST_IN_MODULE, True))
    ours = [finding for finding in new if finding.ours]
    if not ours:
        return
    report = outcome.get_result()
    text = "".join(finding.report for finding in ours)
    where = (f"after {item.nodeid}" if state.mode == "test" else
             f"during the tests of {item.path} (this is the last one; "
             f"${MODE_VARIABLE}=test pins the leak on one test)")
    report.outcome = "failed"
    report.longrepr = (f"LeakSanitizer: {len(ours)} new leak(s) with a stack in microcrad "
                       f"{where}:\n\n{text}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is not None:
        state.final_check()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    if state.leaky:
        terminalreporter.section("leaks attributed by LeakSanitizer")
        for description in state.leaky:
            terminalreporter.write_line(f"leaked: {description}")
    elif state.mode != "off":
        terminalreporter.write_line(
            f"leak_attribution: no leak in microcrad (checked after every {state.mode})")
