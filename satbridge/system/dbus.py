"""The one module that imports dbus_next: a small typed client over a bus connection.

Every DBusError (and every failure to reach the bus) becomes a SatbridgeError kind here, so no
other module ever sees a dbus_next type.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dbus_next.aio.message_bus import MessageBus
from dbus_next.constants import BusType, MessageType
from dbus_next.errors import DBusError
from dbus_next.message import Message
from dbus_next.signature import Variant

from satbridge.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SatbridgeError,
    Unavailable,
)

log = logging.getLogger(__name__)

SignalHandler = Callable[[str, list[Any]], None]
"""Called with (object path, body) for each matching signal."""

DBUS = "org.freedesktop.DBus"
DBUS_PATH = "/org/freedesktop/DBus"

_UNAVAILABLE = {
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.NoReply",
    "org.freedesktop.DBus.Error.Disconnected",
    "org.freedesktop.DBus.Error.NoServer",
    "org.freedesktop.DBus.Error.Spawn.ServiceNotFound",
    "org.freedesktop.DBus.Error.Spawn.ChildExited",
    "org.freedesktop.DBus.Error.Spawn.Failed",
}
_NOT_FOUND = {
    "org.freedesktop.DBus.Error.UnknownObject",
    "org.freedesktop.DBus.Error.UnknownMethod",
    "org.freedesktop.DBus.Error.UnknownInterface",
    "org.freedesktop.DBus.Error.UnknownProperty",
    "org.freedesktop.DBus.Error.FileNotFound",
    "org.freedesktop.systemd1.NoSuchUnit",
    "org.freedesktop.NetworkManager.UnknownConnection",
    "org.freedesktop.NetworkManager.UnknownDevice",
}
_DENIED = {
    "org.freedesktop.DBus.Error.AccessDenied",
    "org.freedesktop.DBus.Error.AuthFailed",
    "org.freedesktop.PolicyKit1.Error.NotAuthorized",
    "org.freedesktop.NetworkManager.PermissionDenied",
}
_INVALID = {
    "org.freedesktop.DBus.Error.InvalidArgs",
    "org.freedesktop.DBus.Error.InvalidSignature",
    "org.freedesktop.NetworkManager.Settings.Connection.InvalidProperty",
    "org.freedesktop.NetworkManager.Settings.InvalidProperty",
}
_TIMEOUT = {"org.freedesktop.DBus.Error.Timeout", "org.freedesktop.DBus.Error.TimedOut"}
_PRECONDITION = {
    "org.freedesktop.systemd1.UnitMasked",
    "org.freedesktop.systemd1.JobTypeNotApplicable",
    "org.freedesktop.systemd1.TransactionIsDestructive",
    "org.freedesktop.systemd1.OnlyByDependency",
    "org.freedesktop.NetworkManager.Device.NotActive",
    "org.freedesktop.NetworkManager.ConnectionNotAvailable",
}


def from_dbus_error(name: str, text: str, what: str) -> SatbridgeError:
    """Map a D-Bus error name onto our kinds (the one place that does it)."""
    message = f"{what}: {text or name} ({name})"
    if name in _UNAVAILABLE:
        return Unavailable(message)
    if name in _NOT_FOUND:
        return NotFound(message)
    if name in _DENIED:
        return PermissionDenied(message)
    if name in _INVALID:
        return InvalidArgument(message)
    if name in _TIMEOUT:
        return DeadlineExceeded(message)
    if name in _PRECONDITION:
        return FailedPrecondition(message)
    return Internal(message)


def unwrap(value: Any) -> Any:
    """Variants (nested in lists and dicts too) -> plain Python values."""
    if isinstance(value, Variant):
        return unwrap(value.value)
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def variant(signature: str, value: Any) -> Any:
    """Build a D-Bus variant for settings dicts (kept here so callers never import dbus_next)."""
    return Variant(signature, value)


@dataclass(frozen=True)
class Watching:
    """A signal subscription an adapter made (services.events.Watching): `alive()` while its
    connection is up; awaiting the object itself stops it."""

    bus: Bus
    cleanup: Callable[[], Awaitable[None]]

    def alive(self) -> bool:
        return self.bus.connected

    def __call__(self) -> Awaitable[None]:
        return self.cleanup()


class Bus:
    """One connection to a message bus (the system bus, or a lab's private one)."""

    def __init__(self, bus: MessageBus, address: str) -> None:
        self._bus = bus
        self.address = address
        # Well-known name -> the unique name that owns it now; a name with no owner is absent.
        # Only names we watch are here, and only the bus daemon's NameOwnerChanged changes them.
        self._owners: dict[str, str] = {}
        self._owner_changes: dict[str, int] = {}
        self._watched: set[str] = set()
        self._bus.add_message_handler(self._on_name_owner_changed)

    @classmethod
    async def connect(cls, address: str | None = None, *, timeout: float = 5.0) -> Bus:
        """Connect to `address` (a D-Bus address string) or the system bus."""
        where = address or "the system bus"
        try:
            bus = await asyncio.wait_for(
                MessageBus(bus_address=address, bus_type=BusType.SYSTEM).connect(),  # type: ignore[arg-type]
                timeout,
            )
        except (OSError, TimeoutError, EOFError) as exc:
            raise Unavailable(f"cannot connect to {where}: {exc}") from None
        except DBusError as exc:
            raise from_dbus_error(exc.type, exc.text, f"connecting to {where}") from None
        return cls(bus, where)

    @property
    def connected(self) -> bool:
        return bool(self._bus.connected)

    @property
    def unique_name(self) -> str:
        """This connection's own unique name (":1.42")."""
        return str(self._bus.unique_name or "")

    async def close(self) -> None:
        self._bus.disconnect()  # type: ignore[no-untyped-call]
        # Collect the disconnect's outcome: dbus-next leaves an EOFError in a future otherwise,
        # and asyncio reports it as "never retrieved".
        with contextlib.suppress(Exception):
            await self._bus.wait_for_disconnect()  # type: ignore[no-untyped-call]

    async def call(
        self,
        destination: str,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: Sequence[Any] = (),
        *,
        timeout: float = 30.0,
    ) -> list[Any]:
        """Call a method; return the reply body with Variants unwrapped."""
        what = f"{interface}.{member}"
        if not self._bus.connected:
            raise Unavailable(f"{what}: the D-Bus connection to {self.address} is closed")
        message = Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=list(body),
        )
        try:
            reply = await asyncio.wait_for(self._bus.call(message), timeout)
        except TimeoutError:
            raise DeadlineExceeded(f"{what}: no answer from {destination} within {timeout:g} s") from None
        except (OSError, EOFError) as exc:
            raise Unavailable(f"{what}: D-Bus connection lost: {exc}") from None
        if reply is None:
            return []
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise from_dbus_error(reply.error_name or "", text, what)
        return [unwrap(v) for v in reply.body]

    async def get_all(self, destination: str, path: str, interface: str) -> dict[str, Any]:
        (props,) = await self.call(destination, path, "org.freedesktop.DBus.Properties", "GetAll", "s", [interface])
        return dict(props)

    async def get(self, destination: str, path: str, interface: str, name: str) -> Any:
        (value,) = await self.call(destination, path, "org.freedesktop.DBus.Properties", "Get", "ss", [interface, name])
        return value

    async def name_owner(self, name: str) -> str | None:
        """Ask the bus daemon now which unique name owns `name` (None: nobody)."""
        if name.startswith(":"):
            return name
        try:
            (owner,) = await self.call(DBUS, DBUS_PATH, DBUS, "GetNameOwner", "s", [name])
        except Unavailable:  # NameHasNoOwner
            return None
        return str(owner)

    def owner(self, name: str) -> str | None:
        """The unique name that owns the watched `name`, as NameOwnerChanged last told us."""
        return name if name.startswith(":") else self._owners.get(name)

    async def watch_owner(self, name: str) -> None:
        """Follow who owns `name` (a daemon restart gets a new unique name) from now on."""
        if name.startswith(":") or name in self._watched:
            return
        self._owner_changes.setdefault(name, 0)
        rule = (
            f"type='signal',sender='{DBUS}',path='{DBUS_PATH}',interface='{DBUS}',"
            f"member='NameOwnerChanged',arg0='{name}'"
        )
        await self.call(DBUS, DBUS_PATH, DBUS, "AddMatch", "s", [rule])
        changes = self._owner_changes[name]
        owner = await self.name_owner(name)
        # A NameOwnerChanged handled after we asked is newer than (or as new as) the answer.
        if self._owner_changes[name] == changes:
            self._set_owner(name, owner)
        self._watched.add(name)

    def _set_owner(self, name: str, owner: str | None) -> None:
        if owner:
            self._owners[name] = owner
        else:
            self._owners.pop(name, None)

    def _on_name_owner_changed(self, msg: Message) -> None:
        # Only the bus daemon itself can send as org.freedesktop.DBus: the daemon stamps every
        # other message with its sender's unique name, so this sender check cannot be forged.
        if (
            msg.message_type != MessageType.SIGNAL
            or msg.sender != DBUS
            or msg.path != DBUS_PATH
            or msg.interface != DBUS
            or msg.member != "NameOwnerChanged"
            or msg.signature != "sss"
        ):
            return
        name, old, new = (str(v) for v in msg.body)
        if name in self._owner_changes:
            self._owner_changes[name] += 1
            self._set_owner(name, new)
            log.info("%s is now owned by %s (was %s)", name, new or "nobody", old or "nobody")

    async def subscribe(
        self, sender: str, interface: str, member: str, handler: SignalHandler, *, path: str | None = None
    ) -> Callable[[], None]:
        """Deliver matching signals from `sender` to `handler`; returns a function that stops it.

        A signal counts only when it comes from the unique name that owns `sender` at that
        moment (checked for each signal; with no owner, none counts). The AddMatch rule's
        sender is a first filter only: anyone on the bus may send a signal straight to us.
        """
        await self.watch_owner(sender)
        rule = f"type='signal',sender='{sender}',interface='{interface}',member='{member}'"
        if path is not None:
            rule += f",path='{path}'"
        await self.call(DBUS, DBUS_PATH, DBUS, "AddMatch", "s", [rule])
        ignored = 0

        def on_message(msg: Message) -> None:
            nonlocal ignored
            if msg.message_type != MessageType.SIGNAL or msg.interface != interface or msg.member != member:
                return
            if path is not None and msg.path != path:
                return
            owner = self.owner(sender)
            if owner is None or msg.sender != owner:
                # Only the first one is a warning: whoever forges them can send many.
                ignored += 1
                (log.warning if ignored == 1 else log.debug)(
                    "ignored %s.%s from %s: %s is owned by %s (%d ignored)",
                    interface,
                    member,
                    msg.sender,
                    sender,
                    owner or "nobody",
                    ignored,
                )
                return
            handler(msg.path or "", [unwrap(v) for v in msg.body])

        self._bus.add_message_handler(on_message)

        def remove() -> None:
            self._bus.remove_message_handler(on_message)

        return remove
