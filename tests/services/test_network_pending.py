"""The pending network change is shared state, and a revert is audited once (issue 19)."""

from __future__ import annotations

import asyncio
import json

from satbridge.wiring import wire
from tests.conftest import loopback_config


def audit_events(path) -> list[str]:
    return [json.loads(line)["event"] for line in path.read_text().splitlines()] if path.exists() else []


async def test_a_change_not_kept_is_reverted_audited_and_seen_by_every_reader(tmp_path):
    config = loopback_config(tmp_path / "root")
    first, second = wire(config), wire(config)
    try:
        await first.network.set_static("192.0.2.10/24", "192.0.2.1", [], confirm_timeout=1)
        seen = second.network.pending()
        assert seen is not None
        assert seen.what == "static 192.0.2.10/24"
        await asyncio.sleep(1.2)
        assert second.network.pending() is None
        assert first.network.pending() is None
        events = [e for e in audit_events(config.paths.audit_log) if e.startswith("network-")]
        assert events == ["network-changed", "network-reverted"]
        assert (await first.network.show()).method == "auto"
    finally:
        await first.aclose()
        await second.aclose()
