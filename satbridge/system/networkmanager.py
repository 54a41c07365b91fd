"""The Network port over NetworkManager's D-Bus API.

One profile per device, `satbridge-<interface>`. A change replaces the whole profile (Update2
merges per section, and stale legacy keys would win), then Reapply (Update2 alone does not touch
a running device). A change made with a confirm timeout runs inside an NM checkpoint, so NM
itself puts the old configuration back unless the checkpoint is destroyed in time.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from satbridge.core.network import NetworkState, StaticIPv4, Typed, connection_settings
from satbridge.errors import DeadlineExceeded, FailedPrecondition, NotFound, SatbridgeError
from satbridge.system.dbus import Bus, Watching, variant

log = logging.getLogger(__name__)

NM = "org.freedesktop.NetworkManager"
NM_PATH = "/org/freedesktop/NetworkManager"
SETTINGS_PATH = "/org/freedesktop/NetworkManager/Settings"
SETTINGS = "org.freedesktop.NetworkManager.Settings"
CONNECTION = "org.freedesktop.NetworkManager.Settings.Connection"
DEVICE = "org.freedesktop.NetworkManager.Device"
WIRED_TYPES = (1, 20)  # ethernet, veth (labs)
STATE_ACTIVATED = 100
TO_DISK = 0x1
CHECKPOINT_DELETE_NEW_CONNECTIONS = 0x2
CHECKPOINT = "org.freedesktop.NetworkManager.Checkpoint"


def _variants(settings: dict[str, dict[str, Typed]]) -> dict[str, dict[str, Any]]:
    def conv(sig: str, value: Any) -> Any:
        if sig == "aa{sv}":
            value = [{k: conv(*v) for k, v in item.items()} for item in value]
        return variant(sig, value)

    return {section: {key: conv(*typed) for key, typed in keys.items()} for section, keys in settings.items()}


class NmNetwork:
    def __init__(self, bus_address: str | None, interface: str = "") -> None:
        self.bus_address = bus_address
        self.interface = interface
        self._bus: Bus | None = None

    async def bus(self) -> Bus:
        if self._bus is None or not self._bus.connected:
            self._bus = await Bus.connect(self.bus_address)
        return self._bus

    async def close(self) -> None:
        if self._bus is not None:
            await self._bus.close()
            self._bus = None

    async def watch_checkpoints(self, on_change: Callable[[], None]) -> Watching:
        """Call `on_change` whenever NetworkManager's Checkpoints property changes (a checkpoint
        made, destroyed or rolled back by its timer), from NM's PropertiesChanged signal (only
        from NM's owner: Bus.subscribe)."""
        bus = await self.bus()

        def on_signal(_path: str, body: list[Any]) -> None:
            # PropertiesChanged(s interface, a{sv} changed, as invalidated)
            if (
                len(body) == 3
                and body[0] == NM
                and isinstance(body[1], dict)
                and ("Checkpoints" in body[1] or "Checkpoints" in (body[2] or ()))
            ):
                on_change()

        properties = "org.freedesktop.DBus.Properties"
        remove = await bus.subscribe(NM, properties, "PropertiesChanged", on_signal, path=NM_PATH)

        async def stop() -> None:
            remove()

        return Watching(bus, stop)

    async def _nm(self, member: str, signature: str = "", body: list[Any] | None = None) -> list[Any]:
        return await (await self.bus()).call(NM, NM_PATH, NM, member, signature, body or [])

    async def _device(self) -> tuple[str, str]:
        """(path, interface) of the managed wired device: the configured one, else the first."""
        bus = await self.bus()
        (paths,) = await self._nm("GetDevices")
        found = []
        for path in paths:
            props = await bus.get_all(NM, path, DEVICE)
            if int(props.get("DeviceType", 0)) in WIRED_TYPES:
                found.append((str(props["Interface"]), str(path)))
        for name, path in sorted(found):
            if not self.interface or name == self.interface:
                return path, name
        want = f"interface {self.interface!r}" if self.interface else "wired device"
        raise NotFound(f"NetworkManager knows no {want} (it has: {', '.join(n for n, _ in found) or 'none'})")

    async def _profile(self, interface: str) -> str | None:
        bus = await self.bus()
        (paths,) = await bus.call(NM, SETTINGS_PATH, SETTINGS, "ListConnections")
        for path in paths:
            (settings,) = await bus.call(NM, path, CONNECTION, "GetSettings")
            if settings.get("connection", {}).get("id") == f"satbridge-{interface}":
                return str(path)
        return None

    async def apply(self, static: StaticIPv4 | None, *, confirm_timeout: int) -> str:
        """Configure the device (None = DHCP); return the checkpoint path ("" without one)."""
        bus = await self.bus()
        device, interface = await self._device()
        checkpoint = ""
        if confirm_timeout:
            (checkpoint,) = await self._nm(
                "CheckpointCreate", "aouu", [[device], confirm_timeout, CHECKPOINT_DELETE_NEW_CONNECTIONS]
            )
        try:
            profile = await self._profile(interface)
            profile_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"satbridge:{interface}"))
            settings = _variants(connection_settings(f"satbridge-{interface}", profile_uuid, interface, static))
            if profile is None:
                (profile, _) = await bus.call(
                    NM, SETTINGS_PATH, SETTINGS, "AddConnection2", "a{sa{sv}}ua{sv}", [settings, TO_DISK, {}]
                )
            else:
                await bus.call(NM, profile, CONNECTION, "Update2", "a{sa{sv}}ua{sv}", [settings, TO_DISK, {}])
            active = await bus.get(NM, device, DEVICE, "ActiveConnection")
            current = (
                await bus.get(NM, str(active), "org.freedesktop.NetworkManager.Connection.Active", "Connection")
                if active and active != "/"
                else ""
            )
            if current == profile:
                await bus.call(NM, device, DEVICE, "Reapply", "a{sa{sv}}tu", [{}, 0, 0])
            else:
                await self._nm("ActivateConnection", "ooo", [profile, device, "/"])
            settle = 30.0
            if checkpoint:
                # Waiting past the checkpoint's own rollback is pointless: NM undoes the change.
                settle = max(1.0, min(settle, await self.rollback_deadline(str(checkpoint)) - time.time()))
            await self._wait_configured(device, static, settle)
        except BaseException:
            if checkpoint:  # a change that failed half-way goes back at once, not in N seconds
                try:
                    await self._nm("CheckpointRollback", "o", [checkpoint])
                except SatbridgeError as exc:
                    log.warning("rolling back checkpoint %s failed: %s", checkpoint, exc)
            raise
        return str(checkpoint)

    async def _wait_configured(self, device: str, static: StaticIPv4 | None, timeout: float = 30.0) -> None:
        bus = await self.bus()
        want = f"{static.address.ip}" if static else None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            props = await bus.get_all(NM, device, DEVICE)
            config = str(props.get("Ip4Config", "/"))
            if int(props.get("State", 0)) == STATE_ACTIVATED and config != "/":
                data = await bus.get(NM, config, "org.freedesktop.NetworkManager.IP4Config", "AddressData")
                addresses = [str(a.get("address")) for a in data]
                if (want in addresses) if want else addresses:
                    return
            await asyncio.sleep(0.05)
        raise DeadlineExceeded(
            f"the device did not get its {'address' if static else 'DHCP lease'} within {timeout:g} s"
        )

    async def rollback_deadline(self, checkpoint: str) -> float:
        """When NetworkManager rolls `checkpoint` back, in seconds since the epoch: its timer
        started at CheckpointCreate, not when the change settled. From the checkpoint's
        `Created` (CLOCK_BOOTTIME, ms) and `RollbackTimeout` (s) properties (NM D-Bus API,
        org.freedesktop.NetworkManager.Checkpoint). NotFound once NM has rolled it back."""
        props = await (await self.bus()).get_all(NM, checkpoint, CHECKPOINT)
        created_ms, timeout_s = int(props["Created"]), int(props["RollbackTimeout"])
        left = created_ms / 1000 + timeout_s - time.clock_gettime(time.CLOCK_BOOTTIME)
        return time.time() + left

    async def confirm(self, checkpoint: str) -> None:
        try:
            await self._nm("CheckpointDestroy", "o", [checkpoint])
        except NotFound:
            raise FailedPrecondition("nothing to confirm: NetworkManager already rolled the change back") from None
        except SatbridgeError as exc:
            if "checkpoint" in str(exc).lower():
                raise FailedPrecondition(f"nothing to confirm: {exc}") from None
            raise

    async def state(self) -> NetworkState:
        bus = await self.bus()
        device, interface = await self._device()
        props = await bus.get_all(NM, device, DEVICE)
        method, gateway = "", ""
        addresses: tuple[str, ...] = ()
        dns: tuple[str, ...] = ()
        search: tuple[str, ...] = ()
        dhcp: dict[str, str] = {}
        profile = await self._profile(interface)
        active = str(props.get("ActiveConnection", "/"))
        if not profile and active != "/":
            # Not ours yet (a delivered appliance runs NM's automatic DHCP profile): say what runs.
            profile = str(await bus.get(NM, active, "org.freedesktop.NetworkManager.Connection.Active", "Connection"))
        if profile and profile != "/":
            (settings,) = await bus.call(NM, profile, CONNECTION, "GetSettings")
            method = str(settings.get("ipv4", {}).get("method", ""))
        config = str(props.get("Ip4Config", "/"))
        if config != "/":
            ip4 = await bus.get_all(NM, config, "org.freedesktop.NetworkManager.IP4Config")
            addresses = tuple(f"{a['address']}/{a['prefix']}" for a in ip4.get("AddressData", []))
            gateway = str(ip4.get("Gateway", ""))
            dns = tuple(str(d["address"]) for d in ip4.get("NameserverData", []))
            search = tuple(ip4.get("Searches", []))
        lease = str(props.get("Dhcp4Config", "/"))
        if lease != "/":
            options = await bus.get(NM, lease, "org.freedesktop.NetworkManager.DHCP4Config", "Options")
            dhcp = {str(k): str(v) for k, v in options.items() if not str(k).startswith("requested_")}
        hostname = str(await bus.get(NM, SETTINGS_PATH, SETTINGS, "Hostname"))
        return NetworkState(interface, method, addresses, gateway, dns, search, dhcp, hostname)

    async def set_hostname(self, name: str) -> None:
        await (await self.bus()).call(NM, SETTINGS_PATH, SETTINGS, "SaveHostname", "s", [name])
