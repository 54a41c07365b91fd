"""The state generation and instance id, for snapshot and clone detection (DESIGN §7)."""

from __future__ import annotations

import json

from satbridge.services.ports import Entropy, Store

STATE_FILE = "state.json"


class StateService:
    """`generation` grows on every change and is persisted with fsync before the change is
    reported, so a satellite reverted to an older disk image reports a lower number."""

    def __init__(self, store: Store, entropy: Entropy) -> None:
        self.store = store
        self.entropy = entropy

    def _load(self) -> dict[str, int | str]:
        raw = self.store.read(STATE_FILE)
        data: dict[str, int | str] = json.loads(raw) if raw else {}
        if "instance_id" not in data:
            data = {"instance_id": self.entropy(16).hex(), "generation": 0}
        return data

    def ensure(self) -> None:
        """Create the instance id on first start. Call with the store locked."""
        if self.store.read(STATE_FILE) is None:
            self.store.write(STATE_FILE, json.dumps(self._load()).encode())

    def current(self) -> tuple[str, int]:
        data = self._load()
        return str(data["instance_id"]), int(data["generation"])

    def bump(self) -> int:
        """Record one more change. Call with the store locked."""
        data = self._load()
        data["generation"] = int(data["generation"]) + 1
        self.store.write(STATE_FILE, json.dumps(data).encode())
        return int(data["generation"])

    def reset(self) -> None:
        """A new instance (factory reset): generation starts again under a new id."""
        self.store.remove(STATE_FILE)
