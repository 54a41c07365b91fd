"""The firewall use cases: get, set (with commit-confirm), confirm, reset, restore at start.

State (firewall.json): the confirmed rule set and its revision, and at most one pending change
with its deadline. The kernel always holds the confirmed set or the pending one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, replace
from typing import Any

from satbridge.core import firewall as fw
from satbridge.core import schema
from satbridge.errors import Aborted, FailedPrecondition, InvalidArgument
from satbridge.services.ports import AuditLog, Clock, ConfigFiles, Firewall, Locks, Store
from satbridge.services.state import StateService

log = logging.getLogger(__name__)

STATE_FILE = "firewall.json"
FACTORY_FILE = "firewall-factory.json"
MAX_CONFIRM_TIMEOUT = 3600
FACTORY = fw.RuleSet((), fw.Action.DROP)
"""Without a factory file: only the bridge's own ports (and ping) are open."""


@dataclass(frozen=True)
class FirewallState:
    rules: fw.RuleSet
    revision: int
    pending_revision: int = 0
    rollback_in: float = 0.0
    warnings: tuple[str, ...] = ()
    unchanged: bool = False  # a reset that found the factory rules already in force


_PARSED: dict[bytes, fw.RuleSet] = {}
_PARSED_MAX = 4


def _parsed(data: Any) -> fw.RuleSet:
    """fw.from_json of a rule set read from the state file, remembered by a digest of its JSON:
    each Set, Get and Status read the file again, and validating 1000 rules took 20-40 ms
    every time (the answer is the same for the same JSON; raises what from_json raises)."""
    key = hashlib.sha256(json.dumps(data).encode()).digest()  # the file's own key order
    found = _PARSED.get(key)
    if found is None:
        found = fw.from_json(data)
        while len(_PARSED) >= _PARSED_MAX:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = found
    return found


def _rules(data: Any) -> Any:
    if data is not None:
        try:
            _parsed(data)  # rules the bridge cannot read are damage too
        except InvalidArgument as exc:
            raise ValueError(str(exc)) from None
    return data


def _state(data: Any) -> dict[str, Any]:
    """firewall.json's schema: {revision, rules (null: the factory set), pending (null or
    {revision, rules, deadline}), last_revision}; revision and rules required (pending and
    last_revision came later: absent means none and `revision`), revisions whole numbers with
    revision <= last_revision. Damage rebuilds from the factory set at revision 0 (the
    kernel keeps its rules until the next Set or Reset)."""
    data = schema.obj(data, "firewall state", required=("revision", "rules"))
    revision = schema.integer(data, "revision")
    last = schema.integer(data, "last_revision", lo=revision) if "last_revision" in data else revision
    pending = data.get("pending")
    if pending is not None:
        pending = schema.obj(pending, "pending firewall change", required=("revision", "rules", "deadline"))
        pending = {
            "revision": schema.integer(pending, "revision", lo=1, hi=last),
            "rules": _rules(schema.obj(pending["rules"], "pending rules")),
            "deadline": schema.timestamp(pending, "deadline"),
        }
    return {"revision": revision, "rules": _rules(data["rules"]), "pending": pending, "last_revision": last}


class FirewallService:
    def __init__(
        self,
        firewall: Firewall,
        store: Store,
        locks: Locks,
        audit: AuditLog,
        state: StateService,
        clock: Clock,
        config: ConfigFiles,
        bridge_ports: tuple[int | fw.BridgePort, ...],
    ) -> None:
        self.firewall = firewall
        self.store = store
        self.locks = locks
        self.audit = audit
        self.state = state
        self.clock = clock
        self.config = config
        self.bridge_ports = bridge_ports
        self._timer: asyncio.Task[None] | None = None
        self._planned: tuple[fw.RuleSet, fw.Plan] | None = None

    # -- persisted state ----------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        data = self.store.read_json(STATE_FILE, _state)
        return data if data is not None else {"revision": 0, "rules": None, "pending": None, "last_revision": 0}

    def _save(self, data: dict[str, Any]) -> None:
        with self.store.lock():
            self.store.write(STATE_FILE, json.dumps(data).encode())
            self.state.bump()

    def factory(self) -> fw.RuleSet:
        """The factory rule set: the config directory's file, else only the bridge's ports.

        The file is the admin's, not the caller's: whatever is wrong with it (a directory or FIFO
        in its place, too big, not UTF-8, not JSON, a field the schema refuses) is
        FailedPrecondition naming the file and the field, and nothing is applied."""
        raw = self.config.read_bytes(FACTORY_FILE, limit=fw.MAX_RULE_FILE)
        if raw is None:
            return FACTORY
        try:
            data = fw.loads(raw, self.config.describe(FACTORY_FILE))
        except InvalidArgument as exc:
            raise FailedPrecondition(f"{exc}; fix or remove the file") from None
        try:
            return fw.from_json(data)
        except InvalidArgument as exc:  # name the file as well as the field
            raise FailedPrecondition(f"{self.config.describe(FACTORY_FILE)}: {exc}; fix or remove the file") from None

    def _confirmed(self, data: dict[str, Any]) -> fw.RuleSet:
        return _parsed(data["rules"]) if data.get("rules") is not None else self.factory()

    def _plan(self, rules: fw.RuleSet) -> fw.Plan:
        """The plan of a validated set; the last one is remembered (a re-apply, a rollback to the
        set in force and the restore at start plan the same set again)."""
        last = self._planned
        if last is not None and (last[0] is rules or last[0] == rules):
            return last[1]
        planned = fw.plan(rules, self.bridge_ports)
        self._planned = (rules, planned)
        return planned

    # -- use cases ----------------------------------------------------------------------

    async def get(self) -> FirewallState:
        return await self._answer(self._load())

    async def _answer(self, data: dict[str, Any]) -> FirewallState:
        """What Get answers for `data`, the state file as just read."""
        pending = data.get("pending")
        rules = _parsed(pending["rules"]) if pending else self._confirmed(data)
        return FirewallState(
            rules=rules,
            revision=int(data["revision"]),
            pending_revision=int(pending["revision"]) if pending else 0,
            rollback_in=max(0.0, float(pending["deadline"]) - self.clock()) if pending else 0.0,
            warnings=fw.bound_warnings(await self.firewall.warnings()),
        )

    async def set(
        self, rules: fw.RuleSet, *, by: str, confirm_timeout: int = 0, base_revision: int = 0
    ) -> FirewallState:
        """`by`: who asks, for the audit log (the paired server's name, `console`, `cli`)."""
        rules = fw.validate(rules)
        if not 0 <= confirm_timeout <= MAX_CONFIRM_TIMEOUT:
            raise InvalidArgument(f"must be 0..{MAX_CONFIRM_TIMEOUT} seconds", field="confirm_timeout_seconds")
        async with self.locks.hold("firewall", timeout=30):
            data = self._load()
            if data.get("pending"):
                raise FailedPrecondition(
                    f"revision {data['pending']['revision']} awaits Confirm; confirm it or let it roll back first"
                )
            if base_revision and base_revision != data["revision"]:
                raise Aborted(f"the rules changed meanwhile: revision {data['revision']}, not {base_revision}")
            confirmed = self._confirmed(data)
            if rules == confirmed:  # compared first: the set in force is planned once, not twice
                rules = confirmed
            previous = self._plan(confirmed)
            changed = await self._apply(self._plan(rules), previous)
            if rules is confirmed:
                # The set in force again: no new revision, nothing to confirm or roll back. The
                # kernel was brought back to it if it had drifted (the jump moved in front of
                # someone's rules, a table flushed by hand): that, not a change, is audited.
                if changed:
                    self.audit.record("firewall-reapplied", revision=int(data["revision"]), families=",".join(changed))
                log.info("firewall Set: revision %s already in force (kernel changed: %s)", data["revision"], changed)
                return await self._answer(data)  # nothing saved: the state just read is the answer
            revision = int(data.get("last_revision", data["revision"])) + 1
            data["last_revision"] = revision
            if confirm_timeout:
                deadline = self.clock() + confirm_timeout
                data["pending"] = {"revision": revision, "rules": fw.to_json(rules), "deadline": deadline}
                self._arm(revision, confirm_timeout)
            else:
                data.update(revision=revision, rules=fw.to_json(rules), pending=None)
            self._save(data)
            self.audit.record(
                "firewall-set", revision=revision, rules=len(rules.rules), confirm_timeout=confirm_timeout, by=by
            )
        return await self.get()

    async def _apply(self, plan: fw.Plan, previous: fw.Plan | None) -> list[str]:
        """Every change goes through here. A change puts the bridge's jump first in INPUT, so
        rules someone else placed ahead of it stop matching: the audit log says so (status and
        Get warn, naming them, for as long as they stay)."""
        ahead = await self.firewall.foreign_ahead()
        changed = await self.firewall.apply(plan, previous)
        for family in changed:
            if ahead.get(family):
                named = fw.name_some(ahead[family])  # bounded: thousands of rules make no huge line
                self.audit.record("firewall-jump-moved", family=family, rules=len(ahead[family]), now_ahead_of=named)
                log.warning("firewall %s: the bridge's jump now comes before rules it did not write: %s", family, named)
        return changed

    async def confirm(self, revision: int, *, by: str) -> FirewallState:
        async with self.locks.hold("firewall", timeout=30):
            data = self._load()
            pending = data.get("pending")
            if not pending or int(pending["revision"]) != revision:
                waiting = f"revision {pending['revision']} is pending" if pending else "nothing is pending"
                raise FailedPrecondition(f"cannot confirm revision {revision}: {waiting}")
            data.update(revision=revision, rules=pending["rules"], pending=None)
            self._save(data)
            self._disarm()
            self.audit.record("firewall-confirmed", revision=revision, by=by)
        return await self.get()

    async def reset(self, *, by: str) -> FirewallState:
        """Back to the factory rule set (any pending change is dropped)."""
        async with self.locks.hold("firewall", timeout=30):
            data = self._load()
            factory = self.factory()
            changed = await self._apply(self._plan(factory), self._plan(self._confirmed(data)))
            if self._confirmed(data) == factory and not data.get("pending"):
                # Already the factory rules: no new revision, nothing audited but a kernel brought
                # back (a second Enter, a second console, a retried RPC change nothing).
                if changed:
                    self.audit.record("firewall-reapplied", revision=int(data["revision"]), families=",".join(changed))
                return replace(await self.get(), unchanged=True)
            revision = int(data.get("last_revision", data["revision"])) + 1
            data.update(revision=revision, last_revision=revision, rules=None, pending=None)
            self._save(data)
            self._disarm()
            self.audit.record("firewall-reset", revision=revision, by=by)
        return await self.get()

    async def restore(self) -> list[str]:
        """At start: the last confirmed set goes (back) into the kernel. A change still pending
        was never confirmed: it is dropped, as its timer would have done."""
        async with self.locks.hold("firewall", timeout=30):
            data = self._load()
            if data.get("pending"):
                self.audit.record(
                    "firewall-rolled-back",
                    revision=int(data["pending"]["revision"]),
                    reason="bridge restarted before Confirm",
                )
                data["pending"] = None
                self._save(data)
            return await self._apply(self._plan(self._confirmed(data)), None)

    # -- the commit-confirm timer ---------------------------------------------------------

    def _arm(self, revision: int, seconds: float) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().create_task(self._rollback_after(revision, seconds))

    def _disarm(self) -> None:
        if self._timer is not None and not self._timer.done() and self._timer is not asyncio.current_task():
            self._timer.cancel()
        self._timer = None

    async def _rollback_after(self, revision: int, seconds: float) -> None:
        await asyncio.sleep(seconds)
        try:
            async with self.locks.hold("firewall", timeout=30):
                data = self._load()
                pending = data.get("pending")
                if not pending or int(pending["revision"]) != revision:
                    return
                await self._apply(self._plan(self._confirmed(data)), self._plan(_parsed(pending["rules"])))
                data["pending"] = None
                self._save(data)
                self.audit.record("firewall-rolled-back", revision=revision, reason="not confirmed in time")
                log.warning("firewall revision %d was not confirmed in time: rolled back", revision)
        except Exception:
            log.exception("rolling back firewall revision %d failed", revision)
