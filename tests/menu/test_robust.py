"""The console survives what it did not expect: a part that fails says so on one line and the
one-second ticker keeps going (red team: an Infinity deadline froze every countdown for good)."""

from __future__ import annotations

import asyncio

from satbridge.menu import app as app_module
from satbridge.menu.views import render_text
from tests.menu.test_app import app, settle  # noqa: F401 - the fixture


def header(menu) -> str:
    return render_text(menu.top).splitlines()[0]


async def test_a_failing_header_part_is_one_line_and_the_next_tick_recovers(app, monkeypatch):  # noqa: F811
    real = app.bridge.network.pending

    def overflow():
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(app.bridge.network, "pending", overflow)
    await app.tick()
    assert "(status unavailable: OverflowError: cannot convert float infinity" in header(app)
    monkeypatch.setattr(app.bridge.network, "pending", real)
    await app.tick()
    assert "not paired" in header(app)


async def test_a_failing_screen_refresh_is_said_and_the_ticker_goes_on(app, monkeypatch):  # noqa: F811
    app.run_action("status")
    await settle(app)
    calls = []

    async def broken() -> None:
        calls.append(1)
        raise ValueError("bad state")

    monkeypatch.setattr(app.controller, "refresh", broken)
    await app.tick()
    assert "Unexpected error refreshing this screen: ValueError: bad state" in render_text(app.top)
    monkeypatch.setattr(app_module, "TICK", 0.01)
    ticker = asyncio.get_running_loop().create_task(app.ticker())
    try:
        await asyncio.sleep(0.2)
        assert not ticker.done(), "the ticker died"
        assert len(calls) > 3
    finally:
        ticker.cancel()


async def test_the_ticker_survives_a_tick_that_raises(app, monkeypatch):  # noqa: F811
    ticks = []

    async def tick() -> None:
        ticks.append(1)
        raise RuntimeError("boom")

    monkeypatch.setattr(app, "tick", tick)
    monkeypatch.setattr(app_module, "TICK", 0.01)
    ticker = asyncio.get_running_loop().create_task(app.ticker())
    try:
        await asyncio.sleep(0.2)
        assert not ticker.done()
        assert len(ticks) > 3
    finally:
        ticker.cancel()


async def test_the_pending_change_loader_refuses_non_finite_deadlines(app):  # noqa: F811
    state = app.bridge.config.paths.state_dir
    state.mkdir(parents=True, exist_ok=True)
    for deadline in ("Infinity", "NaN", "1e308"):
        (state / "network-pending.json").write_text(f'{{"checkpoint": "/x/1", "deadline": {deadline}, "what": "x"}}')
        assert app.bridge.network.pending() is None
        await app.tick()
        assert "not paired" in header(app)
