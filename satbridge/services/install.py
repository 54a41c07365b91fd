"""Install: a journaled state machine (DESIGN §5) that ends COMMITTED or ROLLED_BACK.

verify -> extract to staging/<v> -> fsync + rename into releases/<v> -> write xcc.service for <v>
-> swap `current` -> restart xcc.service -> health gate (the unit loads, stays active N seconds
and the manifest's probe passes) -> commit, or roll back to the previous release and the unit
file it ran with, and say why. The journal (install.json in the state) records
the phase before each step, so a bridge killed anywhere finishes or rolls back at its next start:
XCC ends on the old or the new release, running, never broken.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from satbridge.core import schema
from satbridge.core.package import Limits, Manifest, check_upload_id, is_version, parse_manifest, version_key
from satbridge.core.units import XCC_UNIT, JobFailed, render_xcc_unit
from satbridge.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, SatbridgeError
from satbridge.services.ports import (
    AuditLog,
    Clock,
    Locks,
    PackageFiles,
    ProberPort,
    ReleasesPort,
    StagingPort,
    Store,
    Units,
)
from satbridge.services.state import StateService
from satbridge.tls import signing

log = logging.getLogger(__name__)

JOURNAL = "install.json"
UNIT_XCC_DIR = "/opt/xcc"  # where XCC lives as the appliance sees it (ExecStart), whatever --root is


@dataclass(frozen=True)
class Event:
    phase: str  # VERIFYING ... COMMITTED, ROLLING_BACK, ROLLED_BACK
    message: str
    version: str = ""
    percent: int = 0
    reason: str = ""


def failpoint(phase: str) -> None:
    """SATBRIDGE_FAILPOINT=install:PHASE kills the bridge (SIGKILL) as it enters PHASE: how the
    crash-safety tests stop it at every step. Unset in production, it does nothing."""
    if os.environ.get("SATBRIDGE_FAILPOINT") == f"install:{phase}":
        os.kill(os.getpid(), signal.SIGKILL)


def _journal(data: Any) -> dict[str, str]:
    """install.json: a flat object of strings (the install's phase, versions, upload id)."""
    data = schema.obj(data, "install journal", required=("phase", "version"))
    for key in data:
        schema.text(data, key)
    return {str(k): v for k, v in data.items()}


class InstallService:
    def __init__(
        self,
        staging: StagingPort,
        releases: ReleasesPort,
        packages: PackageFiles,
        units: Units,
        prober: ProberPort,
        store: Store,
        locks: Locks,
        audit: AuditLog,
        state: StateService,
        clock: Clock,
        keys_dir: Path,
        *,
        allow_unsigned: bool = False,
        health_gate: float = 5.0,
        limits: Limits | None = None,
        package_name: str = "xcc",
    ) -> None:
        self.staging = staging
        self.releases = releases
        self.packages = packages
        self.installing: set[str] = set()  # upload ids in use: staging must not evict them
        self.units = units
        self.prober = prober
        self.store = store
        self.locks = locks
        self.audit = audit
        self.state = state
        self.clock = clock
        self.keys_dir = keys_dir
        self.allow_unsigned = allow_unsigned
        self.health_gate = health_gate
        self.limits = limits or Limits()
        self.package_name = package_name

    # -- the journal --------------------------------------------------------------------

    def _journal(self, **data: object) -> None:
        with self.store.lock():
            if data:
                self.store.write(JOURNAL, json.dumps(data).encode())
            else:
                self.store.remove(JOURNAL)

    def _read_journal(self) -> dict[str, str] | None:
        # Not rebuilt: without the journal nobody knows whether an install was half done.
        return self.store.read_json(
            JOURNAL,
            _journal,
            rebuild=False,
            fix="check /opt/xcc/current, then remove the file (or run a factory reset)",
        )

    # -- verification -----------------------------------------------------------------------

    def verify(self, package: Path, *, allow_downgrade: bool) -> Manifest:
        raw, signature = self.packages.read_head(package)
        manifest = parse_manifest(raw)
        trusted = signing.load_trusted(self.keys_dir)
        for problem in trusted.problems:
            log.warning("trusted keys: %s", problem)
        if not signing.verify_any(trusted.keys, signature, raw):
            if not self.allow_unsigned:
                unusable = f"; unusable: {'; '.join(trusted.problems)}" if trusted.problems else ""
                raise PermissionDenied(
                    f"the package signature does not verify against the {len(trusted.keys)} trusted key(s) "
                    f"in {self.keys_dir}{unusable}"
                )
            log.warning("installing %s %s unsigned: allowed by the config", manifest.name, manifest.version)
        if manifest.name != self.package_name:
            raise InvalidArgument(
                f"this is a {manifest.name!r} package, not {self.package_name!r}", field="manifest.name"
            )
        running = self.releases.current()
        if running == manifest.version:
            raise FailedPrecondition(f"{manifest.version} is already running")
        # A release an older bridge installed under a looser grammar cannot be ordered: any
        # signed package of the current grammar may replace it.
        older = is_version(running) and version_key(manifest.version) < version_key(running)
        if older and not allow_downgrade:
            raise FailedPrecondition(
                f"{manifest.version} is older than the running {running}; allow the downgrade to install it"
            )
        return manifest

    # -- the state machine ----------------------------------------------------------------

    async def install(
        self, upload_id: str, *, allow_downgrade: bool = False, health_gate: float = 0
    ) -> AsyncIterator[Event]:
        check_upload_id(upload_id)
        if not 0 <= health_gate <= 600:
            raise InvalidArgument("0..600 seconds", field="health_gate_seconds")
        if upload_id in self.installing:
            raise Aborted("this package is being installed right now; wait for that install's verdict")
        gate = health_gate or self.health_gate
        self.installing.add(upload_id)
        try:
            async for event in self._install(upload_id, allow_downgrade, gate):
                yield event
        finally:
            self.installing.discard(upload_id)

    def _staged(self, upload_id: str) -> Path:
        """The staged package, checked under the install lock (an install that just committed
        removes its upload: the second caller learns it is installed)."""
        if self.staging.complete(upload_id):
            return self.staging.package(upload_id)
        installed, version = self.staging.installed()
        if installed == upload_id and version and self.releases.current() == version:
            raise FailedPrecondition(f"{version} is already installed and running (this very package)")
        raise NotFound(f"no complete upload {upload_id!r}", field="upload_id")

    async def _install(self, upload_id: str, allow_downgrade: bool, gate: float) -> AsyncIterator[Event]:
        # The lock comes before any check of the upload: what is checked stays true until the end.
        async with self.locks.hold("install", timeout=5):
            package = await asyncio.to_thread(self._staged, upload_id)
            failpoint("VERIFYING")
            yield Event("VERIFYING", "checking the signature and the manifest")
            manifest = await asyncio.to_thread(self.verify, package, allow_downgrade=allow_downgrade)
            version, previous = manifest.version, self.releases.current()
            self._journal(phase="EXTRACTING", upload_id=upload_id, version=version, previous=previous)
            failpoint("EXTRACTING")
            yield Event("EXTRACTING", f"extracting {version}", version)
            await asyncio.to_thread(self.releases.clear_staging)
            try:
                staging_dir = await asyncio.to_thread(self.releases.staging_dir, version)
                await asyncio.to_thread(self.packages.extract, package, staging_dir, manifest, self.limits)
                await asyncio.to_thread(self.releases.promote, version)
            except BaseException:
                await asyncio.to_thread(self.releases.clear_staging)
                self._journal()
                raise
            # The unit belongs to the release: the one the previous release ran with is kept in
            # the journal before the new one is written, so every rollback (and a recovery after
            # kill -9 in any later phase) puts it back with `current`.
            # "" is a unit too (an empty file masks it, as a link to /dev/null does); only a unit
            # that was not there is removed by a rollback, and one that cannot be read as text is
            # left as the install wrote it (not saved), never removed.
            old_unit = await self.units.read_unit_file(XCC_UNIT)
            absent = old_unit is None and not self.units.has_unit_file(XCC_UNIT)
            saved = old_unit is not None or absent
            entry = {"upload_id": upload_id, "version": version, "previous": previous}
            entry |= {"unit_saved": "yes" if saved else "no", "unit": old_unit or ""}
            entry |= {"unit_absent": "yes" if absent else "no"}
            self._journal(phase="SWITCHING", **entry)
            failpoint("SWITCHING")
            yield Event("SWITCHING", f"switching current to {version}", version)
            try:
                await self._ensure_unit(manifest)
                await asyncio.to_thread(self.releases.point, "current", version)
                self._journal(phase="RESTARTING", **entry)
                failpoint("RESTARTING")
                yield Event("RESTARTING", "restarting xcc.service", version)
                await self.units.run_job("restart", XCC_UNIT, timeout=90)
                self._journal(phase="HEALTH_CHECK", **entry)
                failpoint("HEALTH_CHECK")
                yield Event("HEALTH_CHECK", f"xcc.service must stay healthy for {gate:g} s", version)
                await self._health_gate(manifest, gate)
            except (SatbridgeError, JobFailed) as exc:
                reason = str(exc)
                yield Event("ROLLING_BACK", f"rolling back: {reason}", version, reason=reason)
                restored = await self._roll_back(previous, reason, old_unit if saved else None, absent=absent)
                self._journal()
                self.audit.record("install-rolled-back", version=version, restored=restored, reason=reason)
                yield Event("ROLLED_BACK", f"back on {restored or 'nothing (first install)'}", version, reason=reason)
                return
            await self._commit(upload_id, version, previous)
            yield Event("COMMITTED", f"{version} is running", version, percent=100)

    async def _ensure_unit(self, manifest: Manifest) -> None:
        command = [f"{UNIT_XCC_DIR}/current/{manifest.command[0]}", *manifest.command[1:]]
        text = render_xcc_unit(command, working_directory=f"{UNIT_XCC_DIR}/current", log_directory="xcc")
        await self.units.write_unit_file(XCC_UNIT, text)
        await self.units.enable(XCC_UNIT)

    async def _health_gate(self, manifest: Manifest, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        probed = manifest.health is None
        while True:
            state = await self.units.state(XCC_UNIT)
            if not state.loaded:
                # systemd refused the unit file (LoadState=bad-setting, error): it would not
                # start again after a crash or a reboot, whatever runs now.
                raise FailedPrecondition(f"xcc.service does not load (LoadState={state.load_state})")
            if state.active_state != "active":
                raise FailedPrecondition(
                    f"xcc.service is {state.active_state}/{state.sub_state} "
                    f"(Result={state.result or '-'}, exit status {state.exec_main_status})"
                )
            if not probed and manifest.health is not None:
                probed = await self.prober.check(manifest.health)
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
        if not probed:
            assert manifest.health is not None
            raise FailedPrecondition(
                f"the health probe ({manifest.health.kind} port {manifest.health.port}) "
                f"did not pass within {seconds:g} s"
            )

    async def _roll_back(self, previous: str, reason: str, unit: str | None, *, absent: bool) -> str:
        """Back to `previous` and the unit file it ran with (`unit`, or removed when `absent`:
        there was none; None when unknown, as when it could not be read, and then left as it is),
        running; with no previous release (a first install), XCC stopped and unlinked."""
        if absent:
            await self._restore_unit(None)
        elif unit is not None:
            await self._restore_unit(unit)
        if previous and self.releases.has(previous):
            await asyncio.to_thread(self.releases.point, "current", previous)
            try:
                await self.units.run_job("restart", XCC_UNIT, timeout=90)
            except (SatbridgeError, JobFailed) as exc:
                log.error("the previous release %s did not restart either: %s", previous, exc)
            return previous
        try:
            await self.units.run_job("stop", XCC_UNIT, timeout=90)
        except (SatbridgeError, JobFailed) as exc:
            log.warning("stopping the failed first install: %s", exc)
        await asyncio.to_thread(self.releases.point, "current", None)
        return ""

    async def _restore_unit(self, text: str | None) -> None:
        """xcc.service as it was before the install (`text` written back, or removed when None:
        there was none), systemd reloaded. Errors are logged: the rollback goes on to restart XCC."""
        try:
            if text is not None:
                if await self.units.read_unit_file(XCC_UNIT) != text:
                    await self.units.write_unit_file(XCC_UNIT, text)
                    if text:  # an empty unit file is a masked unit: nothing to enable
                        await self.units.enable(XCC_UNIT)
            elif self.units.has_unit_file(XCC_UNIT):
                # Each step on its own: a stop or disable that fails (systemd unreachable, a job
                # that failed) must not leave the failed release's unit behind, which systemd
                # would start at the next boot; a dangling enablement link is ignored once the
                # file is gone (systemd.unit(5)).
                try:
                    await self.units.run_job("stop", XCC_UNIT, timeout=90)
                except (SatbridgeError, JobFailed, OSError) as exc:
                    log.error("stopping the first install's xcc.service: %s", exc)
                try:
                    await self.units.disable(XCC_UNIT)
                except (SatbridgeError, OSError) as exc:
                    log.error("disabling the first install's xcc.service: %s", exc)
                await self.units.remove_unit_file(XCC_UNIT)
        except (SatbridgeError, JobFailed, OSError) as exc:
            log.error("restoring xcc.service as it was before the install: %s", exc)

    async def _commit(self, upload_id: str, version: str, previous: str) -> None:
        await asyncio.to_thread(self.releases.point, "previous", previous or None)
        await asyncio.to_thread(self.releases.prune, {version, previous} - {""})
        await asyncio.to_thread(self.staging.remove, upload_id)
        await asyncio.to_thread(self.staging.mark_installed, upload_id, version)
        self._journal()
        with self.store.lock():
            self.state.bump()
        self.audit.record("installed", version=version, previous=previous)

    async def recover(self) -> str:
        """At start: finish or roll back an install a crash interrupted. Returns what it did."""
        journal = self._read_journal()
        if journal is None:
            return ""
        phase, version, previous = journal["phase"], journal["version"], journal.get("previous", "")
        if phase == "EXTRACTING":
            await asyncio.to_thread(self.releases.clear_staging)
            self._journal()
            self.audit.record("install-recovered", version=version, action="discarded the half extraction")
            return f"discarded the interrupted extraction of {version}"
        unit = journal.get("unit", "") if journal.get("unit_saved") == "yes" else None
        # a journal from before "unit_absent" wrote "" for a unit that was not there
        absent = journal.get("unit_absent", "yes" if unit == "" else "no") == "yes"
        restored = await self._roll_back(previous, f"the bridge stopped during {phase}", unit, absent=absent)
        self._journal()
        self.audit.record("install-recovered", version=version, action=f"rolled back to {restored or 'nothing'}")
        return f"rolled back the interrupted install of {version} to {restored or 'nothing'}"
