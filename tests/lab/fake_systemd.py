"""A fake org.freedesktop.systemd1, published with dbus-next on a private bus.

The protocol stays real (method calls, properties, the JobRemoved signal, D-Bus errors); the
fake records every call and can be told to fail jobs, drop the unit, or never finish a job.
`forge_signal` plays an unprivileged neighbour on the same bus who sends signals that look like
systemd's (or NetworkManager's).
"""

# No `from __future__ import annotations`: dbus-next reads the quoted annotations below as D-Bus
# signatures, and with that import a linter would "unquote" them into nonsense.
import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from dbus_next.aio.message_bus import MessageBus
from dbus_next.constants import MessageType, PropertyAccess
from dbus_next.errors import DBusError
from dbus_next.message import Message
from dbus_next.service import ServiceInterface, dbus_property, method, signal

UNIT_PREFIX = "/org/freedesktop/systemd1/unit/"


def unit_path(name: str) -> str:
    return UNIT_PREFIX + "".join(c if c.isalnum() else f"_{ord(c):02x}" for c in name)


@dataclass
class Behaviour:
    job_seconds: float = 0.05
    fail_jobs: bool = False
    unit_missing: bool = False
    never_finish: bool = False
    calls: list[tuple[str, ...]] = field(default_factory=list)
    events: list[tuple[str, str, float]] = field(default_factory=list)  # (begin|end, job, time)


class UnitIface(ServiceInterface):
    def __init__(self) -> None:
        super().__init__("org.freedesktop.systemd1.Unit")
        self.load_state = "loaded"
        self.active = "inactive"
        self.sub = "dead"
        self.stamp = int(time.time() * 1e6)
        self.file_state = "disabled"

    @dbus_property(access=PropertyAccess.READ)
    def LoadState(self) -> "s":
        return self.load_state

    @dbus_property(access=PropertyAccess.READ)
    def ActiveState(self) -> "s":
        return self.active

    @dbus_property(access=PropertyAccess.READ)
    def SubState(self) -> "s":
        return self.sub

    @dbus_property(access=PropertyAccess.READ)
    def StateChangeTimestamp(self) -> "t":
        return self.stamp

    @dbus_property(access=PropertyAccess.READ)
    def UnitFileState(self) -> "s":
        return self.file_state


class ServiceIface(ServiceInterface):
    def __init__(self) -> None:
        super().__init__("org.freedesktop.systemd1.Service")
        self.main_pid = 0
        self.status = 0
        self.result = "success"

    @dbus_property(access=PropertyAccess.READ)
    def MainPID(self) -> "u":
        return self.main_pid

    @dbus_property(access=PropertyAccess.READ)
    def ExecMainStatus(self) -> "i":
        return self.status

    @dbus_property(access=PropertyAccess.READ)
    def Result(self) -> "s":
        return self.result


class Manager(ServiceInterface):
    def __init__(self, behaviour: Behaviour, units: dict[str, tuple[UnitIface, ServiceIface]]) -> None:
        super().__init__("org.freedesktop.systemd1.Manager")
        self.b = behaviour
        self.units = units
        self.next_job = 1
        self.tasks: set[asyncio.Task[None]] = set()

    def _unit(self, name: str) -> tuple[UnitIface, ServiceIface]:
        if self.b.unit_missing or name not in self.units:
            raise DBusError("org.freedesktop.systemd1.NoSuchUnit", f"Unit {name} not found.")
        return self.units[name]

    def _job(self, verb: str, name: str) -> str:
        self.b.calls.append((verb, name))
        unit, service = self._unit(name)
        job_id = self.next_job
        self.next_job += 1
        path = f"/org/freedesktop/systemd1/job/{job_id}"
        self.b.events.append(("begin", path, time.monotonic()))

        async def finish() -> None:
            await asyncio.sleep(self.b.job_seconds)
            if self.b.never_finish:
                return
            if self.b.fail_jobs:
                unit.active, unit.sub, service.result, service.status, service.main_pid = (
                    "failed",
                    "failed",
                    "exit-code",
                    3,
                    0,
                )
                result = "failed"
            elif verb == "StopUnit":
                unit.active, unit.sub, service.main_pid, service.result = "inactive", "dead", 0, "success"
                result = "done"
            else:
                unit.active, unit.sub, service.main_pid, service.result = "active", "running", 4242, "success"
                result = "done"
            unit.stamp = int(time.time() * 1e6)
            # As systemd does (to subscribers): the unit's changed properties, then the job's end.
            unit.emit_properties_changed({"ActiveState": unit.active, "SubState": unit.sub})
            service.emit_properties_changed({"MainPID": service.main_pid, "Result": service.result})
            self.b.events.append(("end", path, time.monotonic()))
            self.JobRemoved(job_id, path, name, result)

        task = asyncio.ensure_future(finish())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return path

    @method()
    def StartUnit(self, name: "s", mode: "s") -> "o":
        return self._job("StartUnit", name)

    @method()
    def StopUnit(self, name: "s", mode: "s") -> "o":
        return self._job("StopUnit", name)

    @method()
    def RestartUnit(self, name: "s", mode: "s") -> "o":
        return self._job("RestartUnit", name)

    @method()
    def LoadUnit(self, name: "s") -> "o":
        self.b.calls.append(("LoadUnit", name))
        self._unit(name)
        return unit_path(name)

    @method()
    def Subscribe(self):
        self.b.calls.append(("Subscribe",))

    @method()
    def Reload(self):
        self.b.calls.append(("Reload",))

    @method()
    def EnableUnitFiles(self, files: "as", runtime: "b", force: "b") -> "ba(sss)":
        self.b.calls.append(("EnableUnitFiles", *files))
        for name in files:
            self._unit(name)[0].file_state = "enabled"
        return [True, [["symlink", f"/etc/systemd/system/multi-user.target.wants/{f}", f] for f in files]]

    @method()
    def DisableUnitFiles(self, files: "as", runtime: "b") -> "a(sss)":
        self.b.calls.append(("DisableUnitFiles", *files))
        for name in files:
            self._unit(name)[0].file_state = "disabled"
        return [["unlink", f"/etc/systemd/system/multi-user.target.wants/{f}", ""] for f in files]

    @signal()
    def JobRemoved(self, job_id: "u", job: "o", unit: "s", result: "s") -> "uoss":
        return [job_id, job, unit, result]


class FakeSystemd:
    def __init__(self, address: str, units: tuple[str, ...] = ("xcc.service",)) -> None:
        self.address = address
        self.unique_name = ""
        self.behaviour = Behaviour()
        self.units = {name: (UnitIface(), ServiceIface()) for name in units}
        self.manager = Manager(self.behaviour, self.units)
        self.bus: MessageBus | None = None

    async def start(self) -> "FakeSystemd":
        self.bus = await MessageBus(bus_address=self.address).connect()
        self.bus.export("/org/freedesktop/systemd1", self.manager)
        for name, (unit, service) in self.units.items():
            self.bus.export(unit_path(name), unit)
            self.bus.export(unit_path(name), service)
        await self.bus.request_name("org.freedesktop.systemd1")
        self.unique_name = self.bus.unique_name
        return self

    async def stop(self) -> None:
        for task in list(self.manager.tasks):
            task.cancel()
        if self.bus:
            self.bus.disconnect()
            with contextlib.suppress(Exception):
                await self.bus.wait_for_disconnect()


async def forge_signal(
    address: str, to: str, path: str, interface: str, member: str, signature: str, body: list
) -> None:
    """From a connection of its own, send a signal straight to the unique name `to` (no match
    rule stops that) and to everyone; return once the bus daemon has routed both."""
    forger = await MessageBus(bus_address=address).connect()
    try:
        for destination in (to, None):
            forger.send(
                Message(
                    message_type=MessageType.SIGNAL,
                    destination=destination,
                    path=path,
                    interface=interface,
                    member=member,
                    signature=signature,
                    body=body,
                )
            )
        # The daemon handles one connection's messages in order: once it answers, both are routed.
        await forger.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus", member="GetId"))
    finally:
        forger.disconnect()
        with contextlib.suppress(Exception):
            await forger.wait_for_disconnect()


async def forge_job_removed(address: str, to: str, job: str, unit: str, result: str) -> None:
    """A JobRemoved(id, job, unit, result) that no systemd sent."""
    job_id = int(job.rsplit("/", 1)[1])
    await forge_signal(
        address,
        to,
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "JobRemoved",
        "uoss",
        [job_id, job, unit, result],
    )


async def _serve_forever(address: str) -> None:
    fake = await FakeSystemd(address).start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


if __name__ == "__main__":
    # A fake systemd in its own process, so a test can hang it (SIGSTOP) as a real one hangs.
    import sys

    asyncio.run(_serve_forever(sys.argv[1]))
