"""The one module that imports dbus_next: a small typed client over a bus connection.

Every DBusError (and every failure to reach the bus) becomes a SatbridgeError kind here, so no
other module ever sees a dbus_next type.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
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


class Bus:
    """One connection to a message bus (the system bus, or a lab's private one)."""

    def __init__(self, bus: MessageBus, address: str) -> None:
        self._bus = bus
        self.address = address
        self._handlers: list[Callable[[Message], None]] = []

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

    async def subscribe(self, sender: str, interface: str, member: str, handler: SignalHandler) -> Callable[[], None]:
        """Deliver matching signals to `handler`; returns a function that stops the delivery."""
        rule = f"type='signal',sender='{sender}',interface='{interface}',member='{member}'"
        await self.call(
            "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", "s", [rule]
        )

        def on_message(msg: Message) -> None:
            if msg.message_type == MessageType.SIGNAL and msg.interface == interface and msg.member == member:
                handler(msg.path or "", [unwrap(v) for v in msg.body])

        self._bus.add_message_handler(on_message)

        def remove() -> None:
            self._bus.remove_message_handler(on_message)

        return remove
