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


def test_names_with_spaces_globs_and_newlines_touch_only_the_links_apt_added(tmp_path):
    """Red team: the list was one path a line, so a link named 'd<newline>/…/cron.service'
    read as two paths, and undo removed the unit FILE the second one named."""
    units, listed = tree(tmp_path), tmp_path / "enabled-before.list"
    (units / "keep me [*].service").symlink_to("/lib/systemd/system/x.service")
    unit_file = units / "local.service"
    unit_file.write_text("[Service]\nExecStart=/bin/true\n")
    run("snapshot", listed, units)
    before = links(units)
    sneaky = units / "d\n" / str(units).lstrip("/")
    sneaky.mkdir(parents=True)
    (sneaky / "local.service").symlink_to("/lib/systemd/system/y.service")
    (units / "new *.service").symlink_to("/lib/systemd/system/z.service")
    run("undo", listed, units)
    assert unit_file.read_text().startswith("[Service]")
    assert links(units) == before


def test_a_units_dir_that_does_not_exist_has_no_links(tmp_path):
    """Red team: find failed under pipefail, so snapshot failed on a machine without
    /etc/systemd/system (setup-labs.sh stopped there)."""
    listed = tmp_path / "enabled-before.list"
    run("snapshot", listed, tmp_path / "absent")
    assert run("undo", listed, tmp_path / "absent").stdout == ""
    assert not listed.exists()


def test_an_empty_cut_or_old_list_removes_nothing(tmp_path):
    """Red team: a list cut by a crash (or empty) made undo remove every link of the machine."""
    units = tree(tmp_path)
    enable_like_apt(units)
    before = links(units)
    for content in (b"", b"satbridge unit-links v2\0" + str(units / "getty.target.wants").encode(), b"/x\n/y\n"):
        listed = tmp_path / "enabled-before.list"
        listed.write_bytes(content)
        result = run("undo", listed, units)
        assert "no unit links removed" in result.stderr
        assert links(units) == before
        assert not listed.exists()


def test_a_link_replaced_by_a_file_is_left_alone(tmp_path):
    units, listed = tree(tmp_path), tmp_path / "enabled-before.list"
    run("snapshot", listed, units)
    cron = units / "multi-user.target.wants" / "cron.service"
    cron.unlink()
    cron.write_text("[Unit]\n")
    run("undo", listed, units)
    assert cron.read_text() == "[Unit]\n"
