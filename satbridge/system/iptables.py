"""The firewall adapter: the only importer of iptc (python-iptables).

- Every iptc call runs on ONE dedicated thread: iptc is not thread-safe (reading a rule
  redirects fd 1 for a moment).
- iptc ignores /run/xtables.lock, so the adapter takes it (flock), as iptables itself does,
  and refreshes and retries a commit that races another writer (EAGAIN).
- Reading goes through iptables-legacy-save (8 ms for 1000 rules, against 0.3 s through iptc),
  and a family whose chains already match the plan is not touched at all.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import logging
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from satbridge.core import schema
from satbridge.core.firewall import (
    EARLY_CHAINS,
    IN_CHAIN,
    XCC_CHAIN,
    Plan,
    Spec,
    bridge_lines,
    early_rules,
    expected_lines,
    foreign_input_rules,
    jump_is_first,
    name_some,
    nft_input_hooks,
    other_jumps,
)
from satbridge.errors import Aborted, FailedPrecondition, Internal, SatbridgeError, Unavailable
from satbridge.system.files import DamageHook, load_json
from satbridge.system.runner import run

log = logging.getLogger(__name__)

FAMILIES = ("v4", "v6")
_SAVE = {"v4": "iptables-legacy-save", "v6": "ip6tables-legacy-save"}
_NFT_SAVE = {"v4": "iptables-nft-save", "v6": "ip6tables-nft-save"}
_TABLE_NAMES = {"v4": "ip_tables_names", "v6": "ip6_tables_names"}
SEEN_S = 1.0
"""How long one filter-table read serves the next step of the same Set (see IptcFirewall._filter)."""


def _iptc() -> Any:
    """Import iptc (0.2 s, so only when the firewall changes) and make rule building fast.

    Before each match's final check, python-iptables reads every parameter back through the
    extension's save() (with fd 1 redirected to a pipe) and parses it again: 85% of the time it
    takes to build a rule, and the reason it is unsafe beside other threads. The parameters we
    set are final, so that round trip is skipped; the lab tests compare every rule the kernel
    then holds with the plan, line by line.
    """
    import iptc
    import iptc.ip4tc

    module = iptc.ip4tc
    if getattr(module, "_satbridge_fast", False):
        return iptc
    module.IPTCModule._update_parameters = lambda self: None
    # Another hot spot, same behaviour (cProfile, 1000 rules: a tenth of the build time): every
    # attribute assignment ran dir(self) to tell a parameter from an attribute.
    module.IPTCModule.__setattr__ = _module_setattr
    module._satbridge_fast = True
    return iptc


def _module_setattr(self: Any, name: str, value: Any) -> None:
    """IPTCModule.__setattr__ without dir(): a name that is not an attribute of the object (its
    class or its instance dictionary) is an extension parameter, as dir() decided before."""
    if not name.startswith("_") and not hasattr(type(self), name) and name not in self.__dict__:
        self.parse(name.replace("_", "-"), value)
    else:
        object.__setattr__(self, name, value)


IFNAMSIZ = 16
_IFACE = re.compile(r"[A-Za-z0-9_.@-]{1,15}|[A-Za-z0-9_.@-]{0,14}\+", re.ASCII)


def interface_fields(name: str) -> tuple[bytes, bytes]:
    """The (name, mask) bytes of an `-i NAME` match, exactly as iptables writes them.

    From xtables_parse_interface (iptables, libxtables/xtables.c): the name is copied as given
    (a trailing `+` stays), and the mask is 0xff over the name and its NUL, or over the name
    without its `+` for a wildcard. python-iptables 1.2.0 differs: its ip6tc writes a mask of
    0x01 bytes, so the kernel compares only the lowest bit of each character and `-i lo`
    matched `vs`, `veth1` or `tap0` (ldx/python-iptables#244, issue 15 item 1); both its
    modules also drop the `+` from a wildcard name. Raises ValueError for a name iptables or
    the kernel would refuse (empty, 16 bytes or more, `!`, `/`, `:`, spaces, non-ASCII).
    """
    if not _IFACE.fullmatch(name):
        raise ValueError(f"not an interface name iptables writes exactly: {name!r}")
    raw = name.encode("ascii")
    mask = len(raw) - 1 if raw.endswith(b"+") else len(raw) + 1
    return raw.ljust(IFNAMSIZ, b"\0"), (b"\xff" * mask).ljust(IFNAMSIZ, b"\0")


def _set_in_interface(rule: Any, v6: bool, name: str) -> None:
    """`-i NAME` on an iptc Rule/Rule6, written field by field (see interface_fields)."""
    raw, mask = interface_fields(name)
    ip = rule.entry.ipv6 if v6 else rule.entry.ip
    ip.iniface = raw
    ip.iniface_mask = mask


LAB_NETNS_ENV = "SATBRIDGE_LAB_NETNS"
"""Set only by the labs and the bench: the name (`ip netns`) of the namespace they made for a
bridge rooted elsewhere than `/`. Nothing else lets such a bridge touch a kernel firewall."""
NETNS_DIR = Path("/run/netns")


def lab_netns_problem(root: Path, lab_netns: str | None) -> str | None:
    """Why a bridge rooted at `root` may not touch the kernel firewall here, or None if it may.

    Rooted at `/`: it is the appliance's own bridge, and the firewall is its job. Rooted elsewhere
    (a test, a demo, a bench) it must be told explicitly which lab namespace it runs in, and that
    namespace must be the one this process is in. No heuristic ("am I in PID 1's namespace?")
    decides: on a machine whose PID 1 lives in another namespace such a check says "private" in
    the machine's own namespace (issue 15, item 8).
    """
    if root.resolve() == Path("/"):
        return None
    if not lab_netns:
        return f"{LAB_NETNS_ENV} is not set (only the labs set it); use --sandbox"
    if "/" in lab_netns or lab_netns in (".", ".."):
        return f"{LAB_NETNS_ENV}={lab_netns!r} is not a network namespace name"
    try:
        named = os.stat(NETNS_DIR / lab_netns)
        mine = os.stat("/proc/self/ns/net")
    except OSError as exc:
        return f"cannot check the lab namespace {lab_netns!r}: {exc.strerror}"
    if (named.st_dev, named.st_ino) != (mine.st_dev, mine.st_ino):
        return f"this process does not run in the lab namespace {lab_netns!r}"
    return None


class IptcFirewall:
    """The Firewall port on the kernel's legacy iptables (filter table, IPv4 and IPv6)."""

    def __init__(self, root: Path, *, lab_netns: str | None = None, lock_timeout: float = 10.0) -> None:
        self.root = root
        self.lab_netns = lab_netns
        self.lock_path = root / "run" / "xtables.lock"
        self.lock_timeout = lock_timeout
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iptc")
        self._built: dict[tuple[bool, Spec], bytes] = {}
        """Kernel entries python-iptables built, by (v6, Spec); touched on the iptc thread only,
        pruned after each change to the rules of the plan and of the previous one (about 0.5 KB
        per rule: at most 2 x 2 x (MAX_KERNEL_RULES + base) entries, under 10 MB)."""
        self._targets: dict[tuple[object, ...], bytes] = {}
        self._matches: dict[tuple[bool, str], Any] = {}  # one Match per (v6, extension), iptc thread
        """Target entries by (v6, protocol, name, parameters): a handful, kept (iptc thread)."""
        self._lines: tuple[Plan, dict[str, list[str]]] | None = None
        self._seen: dict[str, tuple[float, object, str, str]] = {}
        """iptables-legacy-save's filter output per family, with the time it was read, the task
        that read it and the step that read or last used it ("ahead" or "applied"). One Set reads
        each table once: foreign_ahead always reads the kernel, apply uses only that read (same
        task, younger than SEEN_S), the warnings that follow use it once more. Nothing else is
        served from it: a restore or a rollback that found nothing to do leaves a read behind,
        and the kernel may have been changed by hand since (red team 21)."""

    def _guard(self) -> None:
        # A bridge rooted elsewhere than / is a test, a demo or a bench: it must never change the
        # firewall of the machine it runs on, only that of a lab namespace it was told it is in.
        problem = lab_netns_problem(self.root, self.lab_netns)
        if problem:
            raise FailedPrecondition(
                f"refusing to change a kernel firewall for a bridge rooted at {self.root}: {problem}"
            )

    async def _save(self, family: str, table: str = "filter") -> str:
        done = await run([_SAVE[family], "-t", table], timeout=30)
        if done.returncode:
            raise Unavailable(f"{_SAVE[family]} failed: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout.decode(errors="replace")

    async def _filter(self, family: str, owner: object, use: tuple[str, ...], keep_as: str | None) -> str:
        """The filter table's save text: the one kept by an earlier step of the same task
        (`owner`) if that step is one of `use` and the read is younger than SEEN_S (taken, so it
        serves once), else a fresh one; kept as `keep_as` for the next step (None: not kept),
        with the time it was read (a reuse does not make it younger). A change this adapter
        commits drops what was kept. read() always asks the kernel."""
        seen = self._seen.pop(family, None)
        if seen is not None and seen[1] is owner and seen[3] in use and time.monotonic() - seen[0] < SEEN_S:
            read_at, text = seen[0], seen[2]
        else:
            read_at, text = time.monotonic(), await self._save(family)
        if keep_as is not None:
            self._seen[family] = (read_at, owner, text, keep_as)
        return text

    async def read(self) -> dict[str, list[str]]:
        """The bridge's lines per family, as iptables-legacy-save prints them."""
        return {family: bridge_lines(await self._save(family)) for family in FAMILIES}

    async def foreign_ahead(self) -> dict[str, list[str]]:
        owner = asyncio.current_task()
        saves = await asyncio.gather(*(self._filter(family, owner, (), "ahead") for family in FAMILIES))
        return {family: foreign_input_rules(save)[0] for family, save in zip(FAMILIES, saves, strict=True)}

    async def apply(self, plan: Plan, previous: Plan | None) -> list[str]:
        """Make the kernel match `plan`, with the bridge's jump first in INPUT; return the
        families that changed. If the second table fails, the first is put back to `previous`
        (or its bridge chains removed). A family already so is not touched (counters kept)."""
        self._guard()
        todo, slow = [], []
        owner = asyncio.current_task()
        saves = await asyncio.gather(*(self._filter(family, owner, ("ahead",), "applied") for family in FAMILIES))
        for family, save in zip(FAMILIES, saves, strict=True):
            if bridge_lines(save) != self._expected(plan, family) or not jump_is_first(save):
                todo.append(family)
                if other_jumps(save):
                    slow.append(family)
        if not todo:
            return []  # what was read stays valid for the warnings that follow
        self._seen.clear()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._apply_locked, plan, previous, todo, slow)
        return todo

    def _expected(self, plan: Plan, family: str) -> list[str]:
        """expected_lines(plan, family), remembered for the last plan object (the service plans
        the set in force once; rendering 1000 rules per family took 5 ms)."""
        if self._lines is None or self._lines[0] is not plan:
            self._lines = (plan, {})
        cached = self._lines[1]
        if family not in cached:
            cached[family] = expected_lines(plan, family)
        return cached[family]

    async def _tables(self, family: str) -> set[str]:
        """The legacy tables that exist in this namespace. Reading one that does not would
        create it (the kernel instantiates a table on first use): only these are read."""
        try:
            text = await asyncio.to_thread((Path("/proc/net") / _TABLE_NAMES[family]).read_text)
        except OSError:
            return set()
        return set(text.split())

    async def warnings(self) -> list[str]:
        """What else filters incoming packets, each kind named (the first few rules) and
        counted: INPUT rules the bridge did not write (ahead of or behind its jump), legacy raw
        and mangle chains that see packets before the filter table, iptables-nft rules, and
        native nftables chains hooked on input. Bounded whatever the kernel holds."""
        notes = []
        owner = asyncio.current_task()
        for family in FAMILIES:
            try:
                ahead, behind = foreign_input_rules(await self._filter(family, owner, ("ahead", "applied"), None))
            except SatbridgeError as exc:
                notes.append(f"cannot read the {family} rules: {exc}")
                continue
            if ahead:
                notes.append(
                    f"{family}: INPUT has {len(ahead)} rules the bridge did not write ahead of its jump, matched "
                    f"before the bridge's rules: {name_some(ahead)}"
                )
            if behind:
                notes.append(
                    f"{family}: INPUT has {len(behind)} rules the bridge did not write behind its jump, never "
                    f"matched (the bridge's default action comes first): {name_some(behind)}"
                )
            tables = await self._tables(family)
            for table in EARLY_CHAINS:
                if table not in tables:
                    continue
                try:
                    early = early_rules(table, await self._save(family, table))
                except SatbridgeError as exc:
                    notes.append(f"cannot read the {family} {table} table: {exc}")
                    continue
                if early:
                    chains = "/".join(EARLY_CHAINS[table])
                    notes.append(
                        f"{family}: the legacy {table} table's {chains} has {len(early)} entries the bridge did "
                        f"not write; they see packets before the bridge's rules and can drop what it opens: "
                        f"{name_some(early)}"
                    )
            try:
                done = await run([_NFT_SAVE[family], "-t", "filter"], timeout=10)
            except SatbridgeError as exc:
                log.debug("no nft view of the %s rules: %s", family, exc)
                continue
            if done.returncode == 0 and any(line.startswith("-A ") for line in done.stdout.decode().splitlines()):
                notes.append(
                    f"nft-backed {family} iptables rules are present beside the bridge's legacy rules; "
                    "both filter packets"
                )
        try:
            done = await run(["nft", "-j", "list", "chains"], timeout=10)
        except SatbridgeError as exc:  # nft is not installed: no native tables to speak of
            log.debug("no nft: %s", exc)
        else:
            hooks = nft_input_hooks(done.stdout.decode(errors="replace")) if done.returncode == 0 else []
            if hooks:
                notes.append(
                    f"nftables has {len(hooks)} native chains hooked on incoming packets beside the bridge's "
                    f"rules; they can drop what the bridge opens: {name_some(hooks)}"
                )
        return notes

    async def close(self) -> None:
        self._thread.shutdown(wait=True)

    # -- on the iptc thread -------------------------------------------------------------

    def _apply_locked(self, plan: Plan, previous: Plan | None, todo: list[str], slow: list[str]) -> None:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise Aborted(f"another program holds {self.lock_path}; try again") from None
                    time.sleep(0.02)
            done: list[str] = []
            try:
                for family in todo:
                    self._commit(family, plan.chains[family], slow=family in slow)
                    done.append(family)
            except Exception:
                for family in done:  # put the first table back: all or nothing
                    try:
                        self._commit(family, previous.chains[family] if previous else None, slow=family in slow)
                    except Exception:
                        log.exception("could not restore the %s firewall after a failed change", family)
                raise
            finally:  # a failed change too: what is kept never outgrows two plans
                wanted = {(f == "v6", spec) for p in (plan, previous) if p for f in FAMILIES for spec in p.chains[f]}
                for key in [k for k in self._built if k not in wanted]:
                    del self._built[key]
        finally:
            os.close(fd)

    def _commit(self, family: str, specs: tuple[Spec, ...] | None, *, slow: bool = False) -> None:
        """One transaction on one table: chains rebuilt, INPUT's jump first, one commit()."""
        iptc = _iptc()
        v6 = family == "v6"
        table_type = iptc.Table6 if v6 else iptc.Table
        for attempt in range(5):
            table = table_type(table_type.FILTER)
            table.autocommit = False
            table.refresh()
            try:
                self._stage(iptc, table, v6, specs, slow=slow)
                table.commit()
                return
            except iptc.IPTCError as exc:
                table.autocommit = True  # drops the staged handle
                if "Resource temporarily unavailable" in str(exc) and attempt < 4:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise Internal(f"iptables ({family}) refused the change: {exc}") from None
            except (iptc.XTablesError, ValueError) as exc:
                table.autocommit = True
                raise Internal(f"iptables ({family}) cannot build a rule: {exc}") from None

    def _stage(self, iptc: Any, table: Any, v6: bool, specs: tuple[Spec, ...] | None, *, slow: bool = False) -> None:
        """Flush the bridge's chains and append every rule of `specs`: a rule built before (same
        family, same Spec) is appended from its cached kernel entry, only new ones are built."""
        rule_type = iptc.Rule6 if v6 else iptc.Rule
        for name in (IN_CHAIN, XCC_CHAIN):
            if table.is_chain(name):
                table.flush_entries(name)
            else:
                table.create_chain(name)
        inp = iptc.Chain(table, "INPUT")
        if slow:  # someone's own jumps to our chain: found by reading every INPUT rule (0.3 s/1000)
            jumps = [i for i, r in enumerate(inp.rules) if r.target and r.target.name == IN_CHAIN]
            for i in reversed(jumps):
                inp.delete_rule(inp.rules[i])
        # Our plain jumps are deleted by value, which libiptc finds in C: reading INPUT through
        # iptc took seconds with thousands of rules someone else wrote (red team 15, finding 3).
        plain = rule_type()
        plain.create_target(IN_CHAIN)
        while True:
            try:
                inp.delete_rule(plain)
            except iptc.IPTCError:
                break
        if specs is None:  # remove the bridge's chains altogether
            for name in (IN_CHAIN, XCC_CHAIN):
                table.delete_chain(name)
            return
        for spec in specs:
            entry = self._built.get((v6, spec))
            if entry is None:
                entry = self._built[(v6, spec)] = _build(rule_type, v6, spec, self._targets, self._matches)
            buf = (ctypes.c_ubyte * len(entry)).from_buffer_copy(entry)
            table.append_entry(spec.chain, buf)
        jump = rule_type()
        jump.create_target(IN_CHAIN)
        inp.insert_rule(jump)


def _build(
    rule_type: Any, v6: bool, spec: Spec, targets: dict[tuple[object, ...], bytes], reuse: dict[tuple[bool, str], Any]
) -> bytes:
    """One rule's kernel entry (ipt_entry/ip6t_entry, its matches, its target; counters zero) as
    python-iptables builds it. The bytes depend on the Spec alone, so they can be reused.

    A target's bytes depend only on its name, its parameters and the protocol (REJECT checks it):
    `targets` keeps them, so a thousand ACCEPTs build one Target (a fifth of the build time).
    A Match object is reset and reused per (family, extension), as python-iptables' own
    Match.reset() allows (its constructor looked the extension up every time). The buffer is
    joined here as Rule.rule joins it (entry, matches and target, each aligned), without its
    copy through Python lists of ints (another fifth)."""
    import ctypes as ct

    from iptc.xtables import xt_align

    rule = rule_type()
    if spec.src:
        rule.src = spec.src
    if spec.iface:
        _set_in_interface(rule, v6, spec.iface)
    if spec.proto:
        rule.protocol = "icmpv6" if spec.proto == "ipv6-icmp" else spec.proto
    matches: list[Any] = []
    for name, params in spec.matches:
        match = reuse.get((v6, name))
        if match is None or any(m is match for m in matches):
            match = reuse[(v6, name)] = rule.create_match(name)
        else:  # as new: buffer zeroed, extension's init run, flags cleared (Match.reset)
            match.rule = rule
            match.reset()
        for option, value in params:
            match.parse(option.replace("_", "-"), value)
        match.final_check()
        matches.append(match)
    key: tuple[object, ...] = (v6, spec.proto, spec.target, spec.target_params)
    target = targets.get(key)
    if target is None:
        made = rule.create_target(spec.target)
        for option, value in spec.target_params:
            made.parse(option.replace("_", "-"), value)
        made.final_check()
        target = targets[key] = ct.string_at(ct.addressof(made.target), xt_align(made.size))
    entry_size = rule._entry_size()
    sizes = [xt_align(m.size) for m in matches]
    rule.entry.target_offset = entry_size + sum(sizes)
    rule.entry.next_offset = rule.entry.target_offset + len(target)
    parts = [ct.string_at(ct.addressof(rule.entry), entry_size)]
    parts += [ct.string_at(ct.addressof(m.match_buf), size) for m, size in zip(matches, sizes, strict=True)]
    parts.append(target)
    return b"".join(parts)


def _sandbox_rules(data: Any) -> dict[str, list[str]]:
    """sandbox-firewall.json: {family: [rule line, ...]}."""
    data = schema.obj(data, "sandbox firewall", required=FAMILIES)
    return {str(f): schema.strings(data, f, limit=100_000) for f in FAMILIES}


class SandboxFirewall:
    """The Firewall port in --sandbox mode: the plan is kept in a file, the kernel untouched."""

    def __init__(self, path: Path, *, on_damaged: DamageHook | None = None, repair: bool = True) -> None:
        self.path = path
        self.on_damaged = on_damaged
        self.repair = repair  # False for a read-only command: damage is reported, not moved

    async def read(self) -> dict[str, list[str]]:
        data = await asyncio.to_thread(
            load_json, self.path, _sandbox_rules, repair=self.repair, on_damaged=self.on_damaged
        )
        return data if data is not None else {f: [] for f in FAMILIES}

    async def apply(self, plan: Plan, previous: Plan | None) -> list[str]:
        import json

        from satbridge.system.files import atomic_write

        current = await self.read()
        wanted = {f: expected_lines(plan, f) for f in FAMILIES}
        todo = [f for f in FAMILIES if current.get(f) != wanted[f]]
        if todo:
            await asyncio.to_thread(atomic_write, self.path, json.dumps(wanted, indent=1).encode())
        return todo

    async def warnings(self) -> list[str]:
        return ["sandbox: the firewall rules are kept in a file, not applied to the kernel"]

    async def foreign_ahead(self) -> dict[str, list[str]]:
        return {f: [] for f in FAMILIES}  # nobody else writes the file

    async def close(self) -> None:
        return None
