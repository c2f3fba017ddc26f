"""The shared derived-view helper (kgfactory/derived_view.py) the retriever index, the RDF view and the tenant
views stand on: one builder at a time, a waiting caller finds the first one's copy, a reader at the current key
never waits for a builder, in-place advance only from the key just before, and `replaced` sees the old copy."""
from __future__ import annotations

import threading
import time

import pytest

from kgfactory.derived_view import DerivedView


@pytest.mark.timeout(30)
def test_one_builder_and_waiters_share_its_copy():
    calls: list[int] = []
    gate = threading.Event()

    def build(key, old):
        calls.append(key)
        gate.wait(5)
        return {"at": key}, key

    view: DerivedView[int, dict] = DerivedView(build)
    got: list[dict] = []
    threads = [threading.Thread(target=lambda: got.append(view.get(1))) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join(5)
    assert calls == [1] and len(got) == 4 and all(g is got[0] for g in got)
    assert view.ensure(1) == (got[0], False) and view.builds == 1


@pytest.mark.timeout(30)
def test_readers_at_the_current_key_do_not_wait_for_a_builder():
    gate = threading.Event()

    def build(key, old):
        if key == 2:
            gate.wait(5)
        return f"copy{key}", key

    view: DerivedView[int, str] = DerivedView(build)
    assert view.get(1) == "copy1"
    builder = threading.Thread(target=view.get, args=(2,))
    builder.start()
    time.sleep(0.1)
    t = time.perf_counter()
    assert view.get(1) == "copy1" and time.perf_counter() - t < 1  # the old key's copy, while 2 is being built
    gate.set()
    builder.join(5)
    assert view.get(2) == "copy2" and view.held_key() == 2


def test_build_may_hold_a_newer_key_and_sees_the_old_copy():
    seen = []

    def build(key, old):
        seen.append(old)
        return f"copy{key + 1}", key + 1  # a load that saw a later revision than asked for

    view: DerivedView[int, str] = DerivedView(build)
    assert view.get(1) == "copy2" and view.get(2) == "copy2"
    view.get(5)
    assert seen == [None, "copy2"]


def test_advance_patches_only_from_the_key_just_before():
    store = {"rows": []}
    builds = []

    def build(key, old):
        builds.append(key)
        store["rows"] = [f"all@{key}"]
        return store, key

    view: DerivedView[int, dict] = DerivedView(build, restore=lambda: (3, store))  # left by an earlier process
    assert view.advance(3, 4, lambda s: s["rows"].append("w4")) and store["rows"] == ["w4"] and builds == []
    assert not view.advance(6, 7, lambda s: s["rows"].append("w7"))  # a gap: someone else wrote 5..6
    assert builds == [7] and store["rows"] == ["all@7"] and view.held_key() == 7


def test_replaced_runs_under_the_guard_and_its_work_after():
    log = []
    guard = threading.RLock()

    def replaced(old, new):
        assert guard._is_owned()
        log.append(("replaced", old, new))
        return lambda: log.append(("after", guard._is_owned()))

    view: DerivedView[int, str] = DerivedView(lambda k, o: (f"v{k}", k), guard=guard, replaced=replaced,
                                              take=lambda v: v.upper())
    assert view.get(1) == "V1" and view.get(2) == "V2" and view.get(2) == "V2"
    assert log == [("replaced", None, "v1"), ("after", False), ("replaced", "v1", "v2"), ("after", False)]
    assert view.drop() == "v2" and view.peek() is None
