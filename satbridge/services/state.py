"""The state generation and instance id, for snapshot and clone detection (DESIGN §7)."""

from __future__ import annotations

import json
from typing import Any

from satbridge.core import schema
from satbridge.services.ports import Entropy, Store

STATE_FILE = "state.json"


def _parse(data: Any) -> dict[str, int | str]:
    """state.json's schema: {"instance_id": 32 hex digits, "generation": 0..2**53}."""
    data = schema.obj(data, "state", required=("instance_id", "generation"))
    instance_id = schema.hexbytes(data, "instance_id", size=16).hex()
    return {"instance_id": instance_id, "generation": schema.integer(data, "generation")}


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
