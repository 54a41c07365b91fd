from pathlib import Path

import pytest

from satbridge.config import DEFAULT_TOML, load_config
from satbridge.core.addresses import ListenAddress
from satbridge.errors import ConfigError


def write(root: Path, text: str) -> None:
    path = root / "etc" / "satbridge" / "satbridge.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_missing_file_gives_defaults(tmp_path):
    config = load_config(tmp_path, env={})
    assert config.server.listen == ListenAddress("::", 50051)
    assert config.server.pairing_listen == ListenAddress("::", 50052)
    assert config.pairing.window_minutes == 15
    assert config.pairing.max_attempts == 5


def test_shipped_default_file_is_the_defaults(tmp_path):
    write(tmp_path, DEFAULT_TOML)
    assert load_config(tmp_path, env={}) == load_config(tmp_path / "elsewhere", env={}).__class__(
        paths=load_config(tmp_path, env={}).paths
    )


def test_root_relocates_every_path(tmp_path):
    paths = load_config(tmp_path, env={}).paths
    for path in (paths.config_file, paths.state_dir, paths.audit_log, paths.xcc_dir, paths.xcc_log_dir):
        assert path.is_relative_to(tmp_path)


def test_every_table_is_read(tmp_path):
    write(
        tmp_path,
        "[update]\nhealth_gate_seconds = 0.5\nallow_unsigned = true\nmax_package_mib = 64\n"
        '[logs]\njournal_units = ["xcc.service"]\n[network]\ninterface = "eth1"\n'
        '[dbus]\naddress = "unix:path=/run/lab/bus"\n',
    )
    config = load_config(tmp_path, env={})
    assert (config.health_gate_seconds, config.allow_unsigned, config.max_package_mib) == (0.5, True, 64)
    assert config.journal_units == ("xcc.service",)
    assert config.network_interface == "eth1"
    assert config.dbus_address == "unix:path=/run/lab/bus"


def test_environment_overrides_the_file(tmp_path):
    write(tmp_path, '[server]\nlisten = "127.0.0.1:1000"\n')
    config = load_config(tmp_path, env={"SATBRIDGE_LISTEN": "[::1]:2000"})
    assert config.server.listen == ListenAddress("::1", 2000)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[server]\nlisten = "50051"\n', "server.listen"),
        ("[server]\nlisten = 50051\n", "server.listen"),
        ('[server]\npairing_listen = "[::]:99999"\n', "server.pairing_listen"),
        ('[server]\nlisten = "[::]:7"\npairing_listen = "0.0.0.0:7"\n', "server.pairing_listen"),
        ("[server]\ngrace_seconds = -1\n", "server.grace_seconds"),
        ("[server]\nlistn = 1\n", "server.listn"),
        ("[server]\npairing_connections_per_source = 0\n", "server.pairing_connections_per_source"),
        ("[server]\npairing_connections_per_source = 65\n", "server.pairing_connections_per_source"),
        ('[server]\nmanagement_connections_per_source = "32"\n', "server.management_connections_per_source"),
        ("[server]\nmanagement_connections_per_source = 129\n", "server.management_connections_per_source"),
        ("[server]\nmanagement_connections_per_source = true\n", "server.management_connections_per_source"),
        ("[pairing]\nwindow_minutes = 0\n", "pairing.window_minutes"),
        ('[pairing]\nmax_attempts = "5"\n', "pairing.max_attempts"),
        ("[pairing]\nmax_attempts = true\n", "pairing.max_attempts"),
        ('[pairing]\nauto_open = "yes"\n', "pairing.auto_open"),
        ('[log]\nlevel = "loud"\n', "log.level"),
        ("[nonsense]\n", "nonsense"),
        ('[dbus]\naddress = "nowhere"\n', "dbus.address"),
        ('[network]\ninterface = "eth 0"\n', "network.interface"),
        ('[logs]\njournal_units = ["rm -rf"]\n', "logs.journal_units"),
        ("[logs]\njournal_directory = 5\n", "logs.journal_directory"),
        ('[update]\nallow_unsigned = "yes"\n', "update.allow_unsigned"),
        ("[update]\nhealth_gate_seconds = 0\n", "update.health_gate_seconds"),
        ("[update]\nmax_package_mib = 0\n", "update.max_package_mib"),
        ("[update]\nsurprise = 1\n", "update.surprise"),
        ("server = 1\n", "server"),
        ("[server\n", "config"),
    ],
)
def test_bad_files_name_the_key(tmp_path, text, key):
    write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path, env={})
    assert exc.value.field == key
    assert str(exc.value).startswith(key)


def test_bad_environment_names_the_key(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path, env={"SATBRIDGE_PAIRING_LISTEN": "nope"})
    assert exc.value.field == "server.pairing_listen"


def test_explicit_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path, env={}, config_file=tmp_path / "missing.toml")
    assert exc.value.field == "config"


def test_the_pairing_share_follows_a_lowered_cap(tmp_path):
    write(tmp_path, "[server]\npairing_connections = 10\n")
    assert load_config(tmp_path, env={}).server.pairing_per_source == 5
    write(tmp_path, "[server]\npairing_connections = 10\npairing_connections_per_source = 6\n")
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path, env={})
    assert exc.value.field == "server.pairing_connections_per_source"
