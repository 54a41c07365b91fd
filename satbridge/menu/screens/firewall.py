"""Firewall: the rule set as a table (both families), its revision and who set it when, the
rules as they go into the kernel for IPv4 and IPv6, and a reset that asks first (No focused)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import urwid

from satbridge.core import firewall as fw
from satbridge.menu import views
from satbridge.menu.base import Controller
from satbridge.menu.term import plain

EVENTS = ("firewall-set", "firewall-reset", "firewall-confirmed", "firewall-rolled-back")


def last_change(audit_log: Path) -> dict[str, Any] | None:
    """The newest firewall entry of the audit log (its last 256 KiB), or None."""
    try:
        with audit_log.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - (256 << 10)))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") in EVENTS:
            return entry
    return None


def _ports(rule: fw.Rule) -> list[str]:
    return [str(p.first) if p.first == p.last else f"{p.first}-{p.last}" for p in rule.ports] or ["any"]


def rule_rows(rules: fw.RuleSet) -> list[list[views.Cell]]:
    """One rule per table row; its ports and sources one per line, so none is cut."""
    return [
        [
            {"v4": "IPv4", "v6": "IPv6", "both": "both"}[r.family.value],
            r.protocol.value,
            _ports(r),
            list(r.sources) or "anywhere",
            r.action.value,
            r.comment,
        ]
        for r in rules.rules
    ]


class FirewallView:
    def __init__(self) -> None:
        self.walker = urwid.SimpleFocusListWalker([urwid.Text("reading the firewall...")])
        self.widget = views.Body(self.walker)

    def show(
        self, head: list[str], rows: list[list[views.Cell]], kernel: dict[str, list[str]], reset: views.Action
    ) -> None:
        widgets: list[urwid.Widget] = [urwid.Text(plain("\n".join(head))), urwid.Divider()]
        widgets += views.table(
            ["Family", "Proto", "Ports", "Sources", "Action", "Comment"], rows, [6, 5, 12, 24, 6, 20]
        )
        if not rows:
            widgets.append(urwid.Text("(no rules from the server: only the bridge's own ports are open)"))
        widgets.append(views.button("Reset to the factory rules", reset))
        for family, lines in kernel.items():
            widgets += [urwid.Divider(), urwid.Text(("title", f"{family} (SATBRIDGE chains):"))]
            widgets += [urwid.Text(plain(line)) for line in lines]
        self.walker[:] = widgets
        self.walker.set_focus(0)  # the top of the page; Tab reaches the reset button


class FirewallController(Controller):
    name = "firewall"
    title = "firewall"

    def make_ui(self) -> urwid.Widget:
        self.view = FirewallView()
        return self.view.widget

    def start(self) -> None:
        self.app.spawn(self.load())

    async def load(self) -> None:
        fws = self.bridge.firewall
        state = await fws.get()
        change = await asyncio.to_thread(last_change, self.bridge.config.paths.audit_log)
        who = "-"
        if change:
            by = change.get("by") or ("the server" if change["event"] == "firewall-set" else "-")
            who = f"{change['event'].removeprefix('firewall-')} by {by} at {change.get('time', '-')}"
        head = [
            f"Revision {state.revision}; default action for other traffic: {state.rules.default_action.value}",
            f"Last change: {who}",
        ]
        if state.pending_revision:
            head.append(
                f"Revision {state.pending_revision} awaits the server's Confirm: rolls back in "
                f"{state.rollback_in:.0f} s"
            )
        head += [f"WARNING: {w}" for w in state.warnings]
        plan = fw.plan(state.rules, fws.bridge_ports)
        kernel = {"IPv4": plan.save_lines("v4"), "IPv6": plan.save_lines("v6")}
        self.state = state
        self.view.show(head, rule_rows(state.rules), kernel, self.ask_reset)

    def ask_reset(self) -> None:
        if not self.idle():
            return
        factory = self.bridge.firewall.factory()
        state = self.state
        if state.rules == factory and not state.pending_revision:
            self.app.ask(
                "nothing to reset",
                [f"The firewall already holds the factory rules (revision {state.revision}): nothing to reset."],
                [("Back", self.app.close_modal)],
            )
            return
        self.app.ask(
            "reset the firewall?",
            [
                f"Replace revision {state.revision} ({len(state.rules.rules)} rules set by the server,",
                f"default {state.rules.default_action.value}) with the factory rules "
                f"({len(factory.rules)} rules, default {factory.default_action.value})?",
                "The server's rules are gone until it sets them again.",
            ],
            [("No", self.app.close_modal), ("Yes, reset", self.reset)],
            focus=0,
        )

    def reset(self) -> None:
        async def run() -> None:
            state = await self.bridge.firewall.reset(by="console")
            await self.load()
            self.app.say(
                f"The firewall already holds the factory rules (revision {state.revision}): nothing changed."
                if state.unchanged
                else f"Firewall reset (revision {state.revision})."
            )

        self.act(run)
