"""The Units port over systemd's D-Bus API (org.freedesktop.systemd1).

A start/stop/restart subscribes to JobRemoved *before* it dispatches the job, so a job that
finishes at once cannot be missed, then waits for that job's result with a timeout. Only
JobRemoved signals from the unique name that owns org.freedesktop.systemd1 count (system/dbus.py
checks each one): anyone on the system bus can send a signal that looks like systemd's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from satbridge.core.units import JobFailed, UnitState
from satbridge.errors import DeadlineExceeded, SatbridgeError
from satbridge.system.dbus import Bus, Watching
from satbridge.system.files import atomic_write

log = logging.getLogger(__name__)

SYSTEMD = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
SERVICE = "org.freedesktop.systemd1.Service"

_VERBS = {"start": "StartUnit", "stop": "StopUnit", "restart": "RestartUnit"}
PROPERTIES = "org.freedesktop.DBus.Properties"
_WATCHED = {"ActiveState", "SubState", "MainPID", "Result"}


def unit_path(unit: str) -> str:
    """systemd's object path for a unit name ("xcc.service" -> .../unit/xcc_2eservice)."""
    return "/org/freedesktop/systemd1/unit/" + "".join(c if c.isalnum() else f"_{ord(c):02x}" for c in unit)


class SystemdUnits:
    """Control units and their files. `root` relocates /etc/systemd/system (tests, images)."""

    def __init__(self, bus_address: str | None, root: Path) -> None:
        self.bus_address = bus_address
        self.unit_dir = root / "etc" / "systemd" / "system"
        self._bus: Bus | None = None
        self._subscribed = False
        self._subscribed_owner: str | None = None  # the systemd that Subscribe() was sent to
        self._waiters: dict[str, asyncio.Future[str]] = {}
        self._finished: dict[str, str] = {}

    async def bus(self) -> Bus:
        """The connection, made on first use and again after it broke (systemd restarted)."""
        if self._bus is None or not self._bus.connected:
            self._bus = await Bus.connect(self.bus_address)
            self._subscribed = False
            self._subscribed_owner = None
        return self._bus

    async def close(self) -> None:
        if self._bus is not None:
            await self._bus.close()
            self._bus = None

    async def _call(
        self, member: str, signature: str = "", body: list[object] | None = None, *, timeout: float = 30.0
    ) -> list[object]:
        return await (await self.bus()).call(
            SYSTEMD, MANAGER_PATH, MANAGER, member, signature, body or [], timeout=timeout
        )

    async def _ensure_subscribed(self) -> None:
        bus = await self.bus()
        if not self._subscribed:
            await bus.subscribe(SYSTEMD, MANAGER, "JobRemoved", self._on_job_removed, path=MANAGER_PATH)
            self._subscribed = True
        # Without Subscribe(), systemd emits JobRemoved to nobody, and a systemd that restarted
        # (a new unique name) has forgotten it: subscribe again whenever the owner is new.
        owner = await bus.name_owner(SYSTEMD)
        if owner is None or owner != self._subscribed_owner:
            try:
                await self._call("Subscribe")
            except SatbridgeError as exc:
                # A re-executed systemd keeps its subscribers; that is what we wanted.
                if "org.freedesktop.systemd1.AlreadySubscribed" not in str(exc):
                    raise
            self._subscribed_owner = owner

    def _on_job_removed(self, _path: str, body: list[object]) -> None:
        # JobRemoved(u id, o job, s unit, s result)
        job, result = str(body[1]), str(body[3])
        waiter = self._waiters.pop(job, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(result)
        elif waiter is None:
            # The signal can beat the method reply that tells us the job path.
            self._finished[job] = result
            if len(self._finished) > 256:
                self._finished.pop(next(iter(self._finished)))

    async def run_job(self, verb: str, unit: str, *, timeout: float) -> None:
        """start/stop/restart `unit` and wait for the job; JobFailed unless it ends "done"."""
        await self._ensure_subscribed()
        loop = asyncio.get_running_loop()
        (job,) = await self._call(_VERBS[verb], "ss", [unit, "replace"])
        job = str(job)
        result = self._finished.pop(job, None)
        if result is None:
            waiter: asyncio.Future[str] = loop.create_future()
            self._waiters[job] = waiter
            try:
                result = await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                raise DeadlineExceeded(f"{verb} {unit}: the systemd job did not finish within {timeout:g} s") from None
            finally:
                self._waiters.pop(job, None)
        if result != "done":
            raise JobFailed(unit, verb, result)

    async def state(self, unit: str) -> UnitState:
        bus = await self.bus()
        (path,) = await self._call("LoadUnit", "s", [unit])
        props = await bus.get_all(SYSTEMD, str(path), UNIT)
        service = await bus.get_all(SYSTEMD, str(path), SERVICE) if props.get("LoadState") == "loaded" else {}
        stamp = int(props.get("StateChangeTimestamp", 0))
        return UnitState(
            load_state=str(props.get("LoadState", "")),
            active_state=str(props.get("ActiveState", "")),
            sub_state=str(props.get("SubState", "")),
            since=stamp / 1e6 if stamp else None,
            main_pid=int(service.get("MainPID", 0)),
            exec_main_status=int(service.get("ExecMainStatus", 0)),
            result=str(service.get("Result", "")),
            unit_file_state=str(props.get("UnitFileState", "")),
        )

    async def watch_unit(self, unit: str, on_change: Callable[[UnitState], None]) -> Watching:
        """Call `on_change` with the unit's state now, then on each PropertiesChanged systemd
        sends for it (ActiveState/SubState on the Unit interface, MainPID/Result on the Service
        one), from the values in the signal: no polling, and the states in between (a crash's
        failed/auto-restart) are seen too. Only signals from systemd's owner count (Bus.subscribe).
        A property sent as invalidated (no value) makes one fresh read."""
        await self._ensure_subscribed()  # systemd sends unit signals only while someone subscribed
        bus = await self.bus()
        path = unit_path(unit)
        known = await self.state(unit)
        fields: dict[str, Any] = {
            "ActiveState": known.active_state,
            "SubState": known.sub_state,
            "MainPID": known.main_pid,
            "Result": known.result,
        }
        refresh: set[asyncio.Task[None]] = set()

        def emit() -> None:
            on_change(
                UnitState(
                    load_state="loaded",
                    active_state=str(fields["ActiveState"]),
                    sub_state=str(fields["SubState"]),
                    main_pid=int(fields["MainPID"]),
                    result=str(fields["Result"]),
                )
            )

        async def reread() -> None:
            try:
                state = await self.state(unit)
            except SatbridgeError as exc:
                log.warning("reading %s after PropertiesChanged: %s", unit, exc)
                return
            fields.update(
                ActiveState=state.active_state, SubState=state.sub_state, MainPID=state.main_pid, Result=state.result
            )
            emit()

        def on_signal(_path: str, body: list[Any]) -> None:
            # PropertiesChanged(s interface, a{sv} changed, as invalidated)
            if len(body) != 3 or body[0] not in (UNIT, SERVICE) or not isinstance(body[1], dict):
                return
            changed = {k: v for k, v in body[1].items() if k in _WATCHED}
            fields.update(changed)
            if _WATCHED.intersection(body[2] or ()):
                task = asyncio.get_running_loop().create_task(reread())
                refresh.add(task)
                task.add_done_callback(refresh.discard)
            elif changed:
                emit()

        remove = await bus.subscribe(SYSTEMD, PROPERTIES, "PropertiesChanged", on_signal, path=path)
        emit()

        async def stop() -> None:
            remove()
            for task in list(refresh):
                task.cancel()
            await asyncio.gather(*refresh, return_exceptions=True)

        return Watching(bus, stop)

    async def enable(self, unit: str) -> None:
        await self._call("EnableUnitFiles", "asbb", [[unit], False, True])
        await self.reload()

    async def disable(self, unit: str) -> None:
        await self._call("DisableUnitFiles", "asb", [[unit], False])
        await self.reload()

    async def reload(self) -> None:
        await self._call("Reload", timeout=90)

    def has_unit_file(self, unit: str) -> bool:
        return (self.unit_dir / unit).is_file()

    async def read_unit_file(self, unit: str) -> str | None:
        """The unit file's text, None when there is none (or it is not a readable text file)."""

        def read() -> str | None:
            try:
                return (self.unit_dir / unit).read_text()
            except (OSError, UnicodeDecodeError):
                return None

        return await asyncio.to_thread(read)

    async def write_unit_file(self, unit: str, text: str) -> None:
        await asyncio.to_thread(atomic_write, self.unit_dir / unit, text.encode())
        await self.reload()

    async def remove_unit_file(self, unit: str) -> None:
        path = self.unit_dir / unit
        if path.exists():
            await asyncio.to_thread(path.unlink)
            await self.reload()
