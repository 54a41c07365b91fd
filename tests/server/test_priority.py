"""server/priority.py: bulk streams pause only while unary calls are recent (the pauses are
recorded, not timed)."""

import pytest

from satbridge.server import priority


@pytest.fixture
def pauses(monkeypatch):
    seen: list[float] = []

    async def sleep(seconds: float) -> None:
        seen.append(seconds)

    monkeypatch.setattr(priority.asyncio, "sleep", sleep)
    return seen


async def test_bulk_never_pauses_without_control_calls(pauses):
    p = priority.Priority(recent=0.2, pause=0.05)
    for _ in range(20):
        await p.bulk()
    assert pauses == []


async def test_bulk_pauses_while_control_calls_are_recent_and_not_after(pauses, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(priority.time, "monotonic", lambda: clock[0])
    p = priority.Priority(recent=0.2, pause=0.02)
    p.control()
    await p.bulk()
    clock[0] += 0.1
    await p.bulk()
    assert pauses == [0.02, 0.02]
    clock[0] += 0.2
    await p.bulk()
    assert pauses == [0.02, 0.02]
