"""The state generation and instance id, for snapshot and clone detection (DESIGN §7)."""

from __future__ import annotations

import json
from typing import Any

from satbridge.services.ports import Entropy, Store

STATE_FILE = "state.json"


def _parse(data: Any) -> dict[str, int | str]:
    """state.json: {"instance_id": 32 hex digits, "generation": int >= 0}."""
    instance_id, generation = data["instance_id"], data["generation"]
    if not isinstance(instance_id, str) or len(instance_id) != 32 or not instance_id.isascii():
        raise ValueError("instance_id is not 32 hex digits")
    bytes.fromhex(instance_id)
    if type(generation) is not int or generation < 0:
        raise ValueError("generation is not a whole number")
    return {"instance_id": instance_id, "generation": generation}


class StateService:
    """`generation` grows on every change and is persisted with fsync before the change is
    reported, so a satellite reverted to an older disk image reports a lower number."""

    def __init__(self, store: Store, entropy: Entropy) -> None:
        self.store = store
        self.entropy = entropy

    def _read(self) -> dict[str, int | str] | None:
        return self.store.read_json(STATE_FILE, _parse)

    def _load(self) -> dict[str, int | str]:
        data = self._read()
        if data is None:
            # Missing, or damaged and set aside: a new instance (satctl sees a new instance id,
            # not a lower generation of the old one, so it reports no false revert).
            data = {"instance_id": self.entropy(16).hex(), "generation": 0}
        return data

    def ensure(self) -> None:
        """Create the instance id on first start (or after damage). Call with the store locked."""
        if self._read() is None:
            self.store.write(STATE_FILE, json.dumps(self._load()).encode())

    def current(self) -> tuple[str, int]:
        """(instance id, generation); ("", 0) before the first start made them (read-only)."""
        data = self._read()
        if data is None:
            return "", 0
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
