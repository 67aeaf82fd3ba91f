"""The engine pool on stand-in engines: one resident at a time, settings started beside it stand by."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest

from pagedbench.engines.pool import EnginePool


@dataclass(frozen=True)
class Fake:
    name: str
    fails: bool = False
    seconds: float = 0.0
    running: list = field(default_factory=list, compare=False, hash=False)
    meet: threading.Barrier | None = field(default=None, compare=False, hash=False)  # starts that must overlap

    def start(self):
        self.running.append(self.name)
        time.sleep(self.seconds)
        if self.meet is not None:
            self.meet.wait(timeout=30)  # BrokenBarrierError when the other start never runs at the same time
        if self.fails:
            self.running.remove(self.name)
            raise RuntimeError(f"{self.name} refused")
        return Engine(self)


@dataclass
class Engine:
    settings: Fake

    def shutdown(self):
        self.settings.running.remove(self.settings.name)


def test_equal_settings_reuse_the_resident_engine_and_others_replace_it():
    running = []
    pool, a, b = EnginePool(), Fake("a", running=running), Fake("b", running=running)
    first = pool.get(a)
    assert pool.get(a) is first and running == ["a"]
    pool.get(b)
    assert running == ["b"] and pool.starts == 2
    pool.close()
    assert running == []


def test_settings_started_beside_overlap_and_stand_by_until_asked_for():
    running = []
    meet = threading.Barrier(2)  # each start waits for the other: serial starts would break it
    on, off = Fake("on", running=running, meet=meet), Fake("off", running=running, meet=meet)
    pool = EnginePool()
    pool.get(on, beside=(off,))
    assert not meet.broken
    assert sorted(running) == ["off", "on"] and set(pool.standby) == {off}
    engine = pool.get(off)  # promoted, not started again: the resident one goes
    assert engine.settings == off and running == ["off"] and pool.starts == 2 and not pool.standby
    pool.get(Fake("on", running=running))  # equal settings, started alone this time
    assert running == ["on"] and pool.starts == 3


def test_close_takes_the_standby_too():
    running = []
    pool = EnginePool()
    pool.get(Fake("on", running=running), beside=(Fake("off", running=running),))
    pool.close()
    assert running == [] and not pool.standby and pool.engine is None


def test_a_failed_side_fails_when_asked_for_and_a_failed_main_leaves_nothing_running():
    running = []
    on, off = Fake("on", running=running), Fake("off", fails=True, running=running)
    pool = EnginePool()
    pool.get(on, beside=(off,))
    with pytest.raises(RuntimeError, match="off refused"):
        pool.get(off)
    assert running == ["on"]  # the refusal was remembered: nothing started or stopped for it

    bad, other = Fake("bad", fails=True, running=running), Fake("other", seconds=0.1, running=running)
    with pytest.raises(RuntimeError, match="bad refused"):
        pool.get(bad, beside=(other,))
    assert running == [] and not pool.standby
