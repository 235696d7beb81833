"""Shared test setup: a leak check around every test, and Hypothesis profiles.

The tests import the installed ``microcrad`` package (or the source tree, when the
caller puts it on the path and sets ``$MICROCRAD_LIB``); nothing here adds the
repository root to ``sys.path``.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

import microcrad

# micrograd's own test file is kept exactly as upstream wrote it but for its import of
# Value, so it imports torch unconditionally: without torch it is left out, not failed.
collect_ignore = [] if importlib.util.find_spec("torch") else ["test_micrograd_sanity.py"]

# The leak check below is function scoped but safe to share between the examples of a
# Hypothesis test: it only compares the node count before and after all of them.
_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}
settings.register_profile("ci", max_examples=200, **_COMMON)
settings.register_profile("dev", max_examples=30, **_COMMON)
settings.register_profile("thorough", max_examples=3000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Moves every object that exists once the tests are collected (PyTorch, NumPy,
    Hypothesis, ...) out of the garbage collector's sight, so that the gc.collect()
    calls of the leak check below stay fast. Objects made by the tests are unaffected."""
    gc.collect()
    gc.freeze()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Records on each test item whether its body failed (read by the leak check)."""
    outcome = yield
    if call.when == "call":
        item.stash[_BODY_FAILED] = outcome.get_result().failed


_BODY_FAILED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def no_leaked_values(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test that leaves more (or fewer) C nodes alive than it found."""
    # pytest keeps the last failure's traceback in sys.last_* (for post-mortem
    # debugging); its frames hold that test's Values, which would otherwise be freed in
    # the middle of this test and be counted against it.
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        if hasattr(sys, name):
            delattr(sys, name)
    gc.collect()
    before = microcrad.live_values()
    yield
    if request.node.stash.get(_BODY_FAILED, False):
        # The failure's traceback still holds the test's Values; counting them would
        # only add a second, misleading report (and shift the next test's baseline).
        return
    gc.collect()
    after = microcrad.live_values()
    assert after == before, f"the test changed the number of live nodes by {after - before}"
