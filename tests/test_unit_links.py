"""build/unit-links.sh: what apt enables while setup-labs installs is disabled again, and a run
killed between the snapshot and the undo is undone by the next one (no root needed: a temporary
tree stands in for /etc/systemd/system)."""

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "build" / "unit-links.sh"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, check=True)


def links(units: Path) -> set[str]:
    return {str(p.relative_to(units)) for p in units.rglob("*") if p.is_symlink()}


def tree(tmp_path: Path) -> Path:
    units = tmp_path / "system"
    (units / "multi-user.target.wants").mkdir(parents=True)
    (units / "getty.target.wants").mkdir()
    (units / "getty.target.wants" / "getty@tty1.service").symlink_to("/lib/systemd/system/getty@.service")
    (units / "multi-user.target.wants" / "cron.service").symlink_to("/lib/systemd/system/cron.service")
    return units


def enable_like_apt(units: Path) -> None:
    """What deb-systemd-helper did when openssh-server and network-manager were installed."""
    (units / "multi-user.target.wants" / "ssh.service").symlink_to("/lib/systemd/system/ssh.service")
    (units / "sshd.service").symlink_to("/lib/systemd/system/ssh.service")
    (units / "network-online.target.wants").mkdir()
    (units / "network-online.target.wants" / "NetworkManager-wait-online.service").symlink_to(
        "/lib/systemd/system/NetworkManager-wait-online.service"
    )
    (units / "multi-user.target.wants" / "NetworkManager.service").symlink_to(
        "/lib/systemd/system/NetworkManager.service"
    )


def test_links_apt_adds_are_removed_and_the_machines_own_are_kept(tmp_path):
    units, listed = tree(tmp_path), tmp_path / "cache" / "enabled-before.list"
    before = links(units)
    run("snapshot", listed, units)
    enable_like_apt(units)
    out = run("undo", listed, units).stdout
    assert links(units) == before
    assert "multi-user.target.wants/NetworkManager.service" in out
    assert "sshd.service" in out
    assert not listed.exists()


def test_a_run_killed_after_the_snapshot_is_undone_by_the_next(tmp_path):
    units, listed = tree(tmp_path), tmp_path / "enabled-before.list"
    before = links(units)
    run("snapshot", listed, units)
    enable_like_apt(units)  # ... and the run is killed here: no undo
    run("undo", listed, units)  # the next run's first step
    assert links(units) == before
    assert run("undo", listed, units).stdout == ""  # nothing listed: nothing touched


def test_without_a_snapshot_nothing_is_removed(tmp_path):
    units = tree(tmp_path)
    enable_like_apt(units)
    before = links(units)
    run("undo", tmp_path / "never-made.list", units)
    assert links(units) == before
