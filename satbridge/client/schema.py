"""One JSON schema per object, shared by both CLIs (`satbridge ... --json`, `satctl ... --json`).

Both build their JSON from the wire messages here: satctl from what the bridge answered,
`satbridge` from the same messages the server would send (server/convert.py). So the two
outputs have one shape by construction, and `SCHEMAS` says what that shape is (the README's
"JSON output" section, checked by tests/client/test_schema.py):

* every key is always present, with one type (a message the bridge left unset is its empty
  value, never a missing key);
* enums are lower-case words (`drop`, `journal`, `tcp`);
* times are RFC 3339 in UTC with a `Z` (`2026-11-28T10:00:00Z`), or null for "none";
* durations are whole seconds (`uptime_seconds`, `rollback_in_seconds`);
* a network's `method` is `dhcp` or `static`, the words of the commands (`network dhcp`,
  `network static`), whatever NetworkManager calls them (`auto`, `manual`);
* every top-level object carries `schema_version`; a change that removes or retypes a key
  raises it;
* a document is printed as one line (`dumps`): one object, then a newline.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from satbridge.api.v1 import firewall_pb2, logs_pb2, system_pb2, xcc_pb2

SCHEMA_VERSION = 1

TIME = "time"
"""A schema type: an RFC 3339 UTC string, or null."""


def when(seconds: float | None) -> str | None:
    """Seconds since the epoch as RFC 3339 UTC (`2026-11-28T10:00:00Z`); None stays None."""
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(document: object) -> str:
    """A document as both tools print it: one object on one line (no indentation), so a script
    reads one line per command and `jq` shows it indented when a person wants to read it."""
    return json.dumps(document)


METHODS = {"auto": "dhcp", "manual": "static"}
"""NetworkManager's ipv4.method words, as the commands say them."""


def method(nm_method: str) -> str:
    """`dhcp` or `static` (the commands' words) for NetworkManager's `auto` or `manual`; any
    other method (`disabled`, `link-local`, "" for none) as it is."""
    return METHODS.get(nm_method, nm_method)


def _ts(msg: Any, name: str) -> str | None:
    if not msg.HasField(name):
        return None
    stamp: Timestamp = getattr(msg, name)
    return when(stamp.seconds)


def xcc(x: xcc_pb2.XccState) -> dict[str, Any]:
    return {
        "installed": x.installed,
        "version": x.version,
        "active_state": x.active_state,
        "sub_state": x.sub_state,
        "since": _ts(x, "since"),
        "main_pid": x.main_pid,
        "exec_main_status": x.exec_main_status,
        "result": x.result,
        "enabled": x.enabled,
    }


def network(n: system_pb2.NetworkState) -> dict[str, Any]:
    return {
        "interface": n.interface,
        "method": method(n.method),
        "addresses": list(n.addresses),
        "gateway": n.gateway,
        "dns": list(n.dns),
        "search_domains": list(n.search_domains),
        "dhcp_lease": dict(sorted(n.dhcp_lease.items())),
        "hostname": n.hostname,
        "rollback_in_seconds": n.rollback_in_seconds,
    }


def status(s: system_pb2.GetStatusResponse) -> dict[str, Any]:
    p = s.pairing
    return {
        "schema_version": SCHEMA_VERSION,
        "hostname": s.hostname,
        "time": _ts(s, "time"),
        "bridge_version": s.bridge_version,
        "instance_id": s.instance_id,
        "state_generation": s.state_generation,
        "boot_id": s.boot_id,
        "uptime_seconds": s.uptime_seconds,
        "addresses": [
            {"interface": a.interface, "address": a.address, "prefix_length": a.prefix_length} for a in s.addresses
        ],
        "disk": {"path": s.disk.path, "total_bytes": s.disk.total_bytes, "free_bytes": s.disk.free_bytes},
        "memory": {"total_bytes": s.memory.total_bytes, "available_bytes": s.memory.available_bytes},
        "pairing": {
            "paired": p.paired,
            "peer_name": p.peer_name,
            "peer_fingerprint": p.peer_fingerprint,
            "paired_at": _ts(p, "paired_at"),
            "window_open": p.window_open,
            "window_expires_at": _ts(p, "window_expires_at"),
            "attempts_left": p.attempts_left,
        },
        "xcc": xcc(s.xcc),
        "firewall_revision": s.firewall_revision,
        "network": network(s.network),
        "warnings": list(s.warnings),
    }


def xcc_document(x: xcc_pb2.XccState) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, **xcc(x)}


def network_document(n: system_pb2.NetworkState) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, **network(n)}


def firewall(state: firewall_pb2.FirewallState) -> dict[str, Any]:
    """The rule set in the form `satctl firewall set FILE` reads, with the revision around it."""
    from satbridge.core.firewall import to_json
    from satbridge.protocol import rule_set

    rules: dict[str, Any] = (
        to_json(rule_set(state.rules)) if state.rules.default_action else {"default_action": "", "rules": []}
    )
    return {
        "schema_version": SCHEMA_VERSION,
        "revision": state.revision,
        "pending_revision": state.pending_revision,
        "rollback_in_seconds": state.rollback_in_seconds,
        "default_action": rules["default_action"],
        "rules": rules["rules"],
        "warnings": list(state.warnings),
    }


def rules_document(data: object) -> object:
    """What `satctl firewall set FILE` reads: a rule set (`default_action`, `rules`), or a
    `firewall` document as `firewall show --json` printed it (either tool), whose state keys
    (`revision`, `warnings`, ...) are dropped; the rule set is then core.firewall's to check.
    A document of another schema_version, or with keys no firewall document has, is refused
    naming the key."""
    from satbridge.errors import InvalidArgument

    if not isinstance(data, dict) or "schema_version" not in data:
        return data
    version = data["schema_version"]
    if type(version) is not int or version != SCHEMA_VERSION:
        raise InvalidArgument(
            f"this satctl reads firewall documents of schema_version {SCHEMA_VERSION}, got {version!r}",
            field="schema_version",
        )
    unknown = sorted(str(k)[:40] for k in data if k not in SCHEMAS["firewall"])
    if unknown:
        raise InvalidArgument(
            f"not a key of a firewall document (see the README's JSON section): {unknown}", field=unknown[0]
        )
    return {k: v for k, v in data.items() if k in ("default_action", "rules")}


def satellite(sat: Any, default: str) -> dict[str, Any]:
    """An inventory entry (client.inventory.Satellite) in the `satellites` list's item form."""
    return {
        "name": sat.name,
        "host": sat.host,
        "port": sat.port,
        "pairing_port": sat.pairing_port,
        "fingerprint": sat.fingerprint,
        "instance_id": sat.instance_id,
        "max_generation": sat.max_generation,
        "paired_at": when(sat.paired_at or None),
        "default": sat.name == default,
    }


def update_result(
    *,
    package: str,
    name: str,
    version: str,
    before: str,
    running: str,
    outcome: str,
    reason: str = "",
    events: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """What `satctl update|sync PKG` did: `outcome` is `installed`, `unchanged` (the package's
    version was running already) or `rolled_back` (`reason` says why); `events` the install's
    phases in order (lower-case) with the satellite's messages."""
    return {
        "package": package,
        "name": name,
        "version": version,
        "previous_version": before,
        "running_version": running,
        "outcome": outcome,
        "reason": reason,
        "events": [{"phase": phase, "message": message} for phase, message in events or []],
    }


def version(bridge_version: str, xcc_version: str) -> dict[str, Any]:
    """`satbridge version --json`, `satctl version --json`: the satellite's bridge and its
    installed XCC ("" when none)."""
    return {"schema_version": SCHEMA_VERSION, "bridge_version": bridge_version, "xcc_version": xcc_version}


def logs(sources: list[logs_pb2.LogSource]) -> dict[str, Any]:
    kinds = {logs_pb2.LogSource.FILE: "file", logs_pb2.LogSource.JOURNAL: "journal"}
    return {
        "schema_version": SCHEMA_VERSION,
        "logs": [
            {"name": s.name, "kind": kinds.get(s.kind, ""), "size": s.size, "mtime": _ts(s, "mtime")} for s in sources
        ],
    }


def enum_word(enum_type: Any, value: int) -> str:
    """An enum value as its lower-case word (`rolled_back`); "" for the UNSPECIFIED zero, and
    `unknown_N` for a number this satctl's proto does not name (proto3 enums are open: a newer
    bridge's value arrives as its number)."""
    if not value:
        return ""
    known = enum_type.values_by_number.get(value)
    return str(known.name).lower() if known is not None else f"unknown_{value}"


def _enum(msg: Any, field: str) -> str:
    """An enum field as the lower-case word (enum_word)."""
    return enum_word(msg.DESCRIPTOR.fields_by_name[field].enum_type, getattr(msg, field))


def _event_kinds(e: system_pb2.Event) -> dict[str, dict[str, Any] | None]:
    """Every kind's key: null, but the event's own kind, whose fields are those EVENT_KINDS lists,
    read off the message (enums, and install's phase name, as lower-case words)."""
    kinds: dict[str, dict[str, Any] | None] = dict.fromkeys(EVENT_KINDS)
    name = e.WhichOneof("kind")
    if name in EVENT_KINDS:
        msg = getattr(e, name)
        fields = msg.DESCRIPTOR.fields_by_name
        kinds[name] = {
            key: _enum(msg, key)
            if fields[key].enum_type
            else getattr(msg, key).lower()
            if key == "phase"
            else getattr(msg, key)
            for key in EVENT_KINDS[name]
        }
    return kinds


def event(e: system_pb2.Event) -> dict[str, Any]:
    """One WatchEvents message (`satctl watch --json`): `kind` names it (`xcc`, `firewall`, ...,
    `lost`, `subscribed`), the object under that key holds its fields, and every other kind's key
    is null, so each key is always present with one type (SCHEMAS["event"])."""
    return {
        "schema_version": SCHEMA_VERSION,
        "seq": e.seq,
        "time": _ts(e, "time"),
        "run": e.run,
        "state_generation": e.state_generation,
        "kind": e.WhichOneof("kind") or "",
        **_event_kinds(e),
    }


class Nullable:
    """A schema type: null, or a value of `schema` (a kind's object in an event)."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema


EVENT_KINDS: dict[str, dict[str, Any]] = {
    "subscribed": {"newest_seq": int},
    "lost": {"reason": str, "first_available_seq": int},
    "xcc": {"active_state": str, "sub_state": str, "main_pid": int, "result": str},
    "install": {"phase": str, "message": str, "percent": int, "version": str, "reason": str},
    "firewall": {"action": str, "revision": int, "reason": str, "by": str},
    "network": {"action": str, "what": str, "reason": str},
    "pairing": {"action": str, "reason": str, "source": str, "peer_name": str, "attempts_left": int},
    "resource": {"resource": str, "low": bool, "free_bytes": int, "total_bytes": int},
    "bridge": {"action": str, "version": str},
    "factory_reset": {"by": str},
}


# The schemas: a key's type is a Python type, TIME, a nested schema (dict), or a one-item list
# (a list of that). `SCHEMAS[name]` is what the README documents for each object.
XCC: dict[str, Any] = {
    "installed": bool,
    "version": str,
    "active_state": str,
    "sub_state": str,
    "since": TIME,
    "main_pid": int,
    "exec_main_status": int,
    "result": str,
    "enabled": bool,
}
NETWORK: dict[str, Any] = {
    "interface": str,
    "method": str,
    "addresses": [str],
    "gateway": str,
    "dns": [str],
    "search_domains": [str],
    "dhcp_lease": {str: str},
    "hostname": str,
    "rollback_in_seconds": int,
}
SATELLITE: dict[str, Any] = {
    "name": str,
    "host": str,
    "port": int,
    "pairing_port": int,
    "fingerprint": str,
    "instance_id": str,
    "max_generation": int,
    "paired_at": TIME,
    "default": bool,
}
UPDATE: dict[str, Any] = {
    "package": str,
    "name": str,
    "version": str,
    "previous_version": str,
    "running_version": str,
    "outcome": str,
    "reason": str,
    "events": [{"phase": str, "message": str}],
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "status": {
        "schema_version": int,
        "hostname": str,
        "time": TIME,
        "bridge_version": str,
        "instance_id": str,
        "state_generation": int,
        "boot_id": str,
        "uptime_seconds": int,
        "addresses": [{"interface": str, "address": str, "prefix_length": int}],
        "disk": {"path": str, "total_bytes": int, "free_bytes": int},
        "memory": {"total_bytes": int, "available_bytes": int},
        "pairing": {
            "paired": bool,
            "peer_name": str,
            "peer_fingerprint": str,
            "paired_at": TIME,
            "window_open": bool,
            "window_expires_at": TIME,
            "attempts_left": int,
        },
        "xcc": XCC,
        "firewall_revision": int,
        "network": NETWORK,
        "warnings": [str],
    },
    "xcc": {"schema_version": int, **XCC},
    "network": {"schema_version": int, **NETWORK},
    "firewall": {
        "schema_version": int,
        "revision": int,
        "pending_revision": int,
        "rollback_in_seconds": int,
        "default_action": str,
        "rules": [{"family": str, "protocol": str, "action": str, "ports": [[int]], "sources": [str], "comment": str}],
        "warnings": [str],
    },
    "logs": {"schema_version": int, "logs": [{"name": str, "kind": str, "size": int, "mtime": TIME}]},
    "satellites": {"schema_version": int, "default": str, "satellites": [SATELLITE]},
    "satellite": {"schema_version": int, **SATELLITE},
    "unpair": {"schema_version": int, "name": str, "host": str, "unpaired_at": TIME, "default": str},
    "disconnect": {"schema_version": int, "was_paired": bool, "xcc_stopped": bool, "problem": str},
    "update": {"schema_version": int, **UPDATE},
    "commission": {"schema_version": int, "satellite": SATELLITE, "update": UPDATE},
    "version": {"schema_version": int, "bridge_version": str, "xcc_version": str},
    "factory-reset": {
        "schema_version": int,
        "steps": [{"name": str, "done": bool, "detail": str}],
        "failed": int,
    },
    "init-config": {"schema_version": int, "path": str, "written": bool},
    "event": {
        "schema_version": int,
        "seq": int,
        "time": TIME,
        "run": str,
        "state_generation": int,
        "kind": str,
        **{name: Nullable(fields) for name, fields in EVENT_KINDS.items()},
    },
    "pair-window": {
        "schema_version": int,
        "open": bool,
        "code": str,
        "expires_at": TIME,
        "attempts_left": int,
        "fingerprint": str,
        "addresses": [str],
        "pairing_port": int,
        "management_port": int,
    },
}


def problems(value: Any, schema: Any, at: str = "$") -> list[str]:
    """Where `value` departs from `schema` (an empty list when it conforms): a missing or extra
    key, or a value of another type."""
    if isinstance(schema, Nullable):
        return [] if value is None else problems(value, schema.schema, at)
    if schema is TIME:
        ok = value is None or (isinstance(value, str) and _is_rfc3339(value))
        return [] if ok else [f"{at}: expected an RFC 3339 UTC time or null, got {value!r}"]
    if isinstance(schema, dict) and len(schema) == 1 and next(iter(schema)) is str:
        if not isinstance(value, dict):
            return [f"{at}: expected an object, got {type(value).__name__}"]
        return [p for k, v in value.items() for p in problems(v, schema[str], f"{at}.{k}")]
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{at}: expected an object, got {type(value).__name__}"]
        found = [f"{at}.{k}: missing" for k in schema if k not in value]
        found += [f"{at}.{k}: not in the schema" for k in value if k not in schema]
        return found + [p for k in schema if k in value for p in problems(value[k], schema[k], f"{at}.{k}")]
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{at}: expected a list, got {type(value).__name__}"]
        return [p for i, v in enumerate(value) for p in problems(v, schema[0], f"{at}[{i}]")]
    if schema is int and isinstance(value, int) and not isinstance(value, bool):
        return []
    if schema is not int and isinstance(value, schema):
        return []
    return [f"{at}: expected {schema.__name__}, got {type(value).__name__} {value!r}"]


def _is_rfc3339(text: str) -> bool:
    try:
        return text.endswith("Z") and dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ") is not None
    except ValueError:
        return False
