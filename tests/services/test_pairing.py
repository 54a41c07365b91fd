"""PairingService over in-memory ports: the window, proofs, trust and the audit trail."""

import json

import pytest

from satbridge.config import PairingConfig
from satbridge.core import pairing as core
from satbridge.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from satbridge.services.identity import IdentityService
from satbridge.services.pairing import TRUST_FILE, WINDOW_FILE, PairingService
from satbridge.services.state import StateService
from satbridge.tls import certs
from tests.fakes import CountingEntropy, FakeClock, FakeHost, ListAudit, MemStore

CHALLENGE = b"c" * 32


@pytest.fixture
def parts():
    store, audit, clock, entropy = MemStore(), ListAudit(), FakeClock(), CountingEntropy()
    identity = IdentityService(store, clock, FakeHost())
    state = StateService(store, entropy)
    with store.lock():
        identity.ensure()
        state.ensure()
    service = PairingService(store, audit, clock, entropy, identity, state, PairingConfig(window_minutes=15))
    return service, store, audit, clock


def request(service, code, name="central"):
    csr_pem = certs.make_csr(certs.new_client_key(), name)
    der = certs.check_csr(csr_pem).der
    fp = service.identity.current().fingerprint
    return csr_pem, core.client_proof(core.code_key(code), fp, der, CHALLENGE)


def test_right_code_pairs_and_answers_with_a_verifiable_proof(parts):
    service, store, audit, _ = parts
    window = service.open_window()
    csr_pem, proof = request(service, window.code)
    result = service.pair(csr_pem, CHALLENGE, proof)
    fp = service.identity.current().fingerprint
    der = certs.check_csr(csr_pem).der
    expected = core.satellite_proof(
        core.code_key(window.code), fp, der, CHALLENGE, certs.cert_der(result.client_cert_pem)
    )
    assert result.satellite_proof == expected
    assert service.is_trusted(certs.fingerprint(result.client_cert_pem).hex())
    assert service.status().paired
    assert service.status().peer_name == "central"
    assert not service.status().window_open, "pairing closes the window"
    assert WINDOW_FILE not in store.files
    assert audit.names()[-1] == "paired"


def test_the_code_is_kept_private_and_only_while_the_window_is_open(parts):
    service, store, _, _ = parts
    window = service.open_window()
    assert window.code.encode() in store.files[WINDOW_FILE]
    assert WINDOW_FILE in store.private
    service.close_window()
    assert WINDOW_FILE not in store.files


def test_wrong_codes_from_many_sources_close_the_window(parts):
    """The global ceiling (pairing.max_failures): each source may fail max_attempts times, and
    the window closes only when all of them together reach the ceiling (issue 16)."""
    service, store, audit, _ = parts
    window = service.open_window()
    wrong = core.format_code(b"\x01" * 10)
    assert wrong != window.code
    ceiling = service.config.max_failures
    for i in range(ceiling):
        csr_pem, proof = request(service, wrong)
        with pytest.raises(PermissionDenied):
            service.pair(csr_pem, CHALLENGE, proof, peer=f"ipv6:[2001:db8:{i + 1}::7]:4000")
        assert service.status().attempts_left == ceiling - 1 - i
    assert not service.status().window_open
    csr_pem, proof = request(service, window.code)
    with pytest.raises(FailedPrecondition):
        service.pair(csr_pem, CHALLENGE, proof)
    assert audit.names().count("pairing-failed") == ceiling
    assert "pairing-window-closed" in audit.names()
    assert "pairing-source-locked" not in audit.names()
    assert TRUST_FILE not in store.files
    closed = service.status().closed_for_failures
    assert closed is not None
    assert {f.source for f in closed.failures} == {f"ipv6:2001:db8:{i + 1}::/64" for i in range(ceiling)}


def test_one_source_is_locked_out_and_another_pairs(parts):
    service, _, audit, _ = parts
    window = service.open_window()
    wrong = core.format_code(b"\x01" * 10)
    for _ in range(service.config.max_attempts + 3):
        csr_pem, proof = request(service, wrong)
        with pytest.raises(PermissionDenied):
            service.pair(csr_pem, CHALLENGE, proof, peer="ipv4:192.0.2.66:1234")
    assert audit.names().count("pairing-failed") == service.config.max_attempts
    assert audit.names().count("pairing-source-locked") == 1
    csr_pem, proof = request(service, window.code)
    with pytest.raises(PermissionDenied, match="may not try again"):
        service.pair(csr_pem, CHALLENGE, proof, peer="ipv4:192.0.2.66:999")
    service.pair(csr_pem, CHALLENGE, proof, peer="ipv4:192.0.2.1:4711")
    assert service.status().paired


def test_expired_code_fails(parts):
    service, _, _, clock = parts
    window = service.open_window()
    clock.advance(15 * 60)
    csr_pem, proof = request(service, window.code)
    with pytest.raises(FailedPrecondition):
        service.pair(csr_pem, CHALLENGE, proof)
    assert not service.status().paired


def test_showing_the_window_shows_the_same_code(parts):
    """Two consoles and the CLI show one code: showing never issues a new one (issue 19)."""
    service, _, _, _ = parts
    with pytest.raises(FailedPrecondition):
        service.show_window()
    assert service.current_window() is None
    first = service.open_window()
    assert service.show_window().code == first.code
    assert service.current_window() == first
    csr_pem, proof = request(service, first.code)
    service.pair(csr_pem, CHALLENGE, proof)
    assert service.current_window() is None, "the code goes with the window"


def test_a_failed_attempt_keeps_the_shown_code(parts):
    service, _, _, _ = parts
    first = service.open_window()
    csr_pem, proof = request(service, "0000-0000-0000-0000")
    with pytest.raises(PermissionDenied):
        service.pair(csr_pem, CHALLENGE, proof)
    shown = service.current_window()
    assert shown is not None
    assert shown.code == first.code
    assert shown.attempts_left == first.attempts_left - 1


def test_a_window_without_its_code_gets_a_new_one_when_shown(parts):
    service, store, _, _ = parts
    service.open_window()
    data = json.loads(store.read("pairing-window.json"))
    del data["code"]
    with store.lock():
        store.write("pairing-window.json", json.dumps(data).encode(), private=True)
    assert service.current_window() is None
    shown = service.show_window()
    assert service.current_window() == shown


def test_auto_open_only_while_unpaired(parts):
    service, _, _, _ = parts
    opened = service.auto_open()
    assert opened is not None
    assert service.auto_open() is None, "an open window is left alone"
    csr_pem, proof = request(service, opened.code)
    service.pair(csr_pem, CHALLENGE, proof)
    assert service.auto_open() is None


def test_unpair_revokes_and_bumps_the_generation(parts):
    service, _, audit, _ = parts
    window = service.open_window()
    csr_pem, proof = request(service, window.code)
    result = service.pair(csr_pem, CHALLENGE, proof)
    _, before = service.state.current()
    assert service.unpair(by="test")
    assert not service.is_trusted(certs.fingerprint(result.client_cert_pem).hex())
    assert service.state.current()[1] == before + 1
    assert not service.unpair(by="test"), "nothing left to remove"
    assert audit.names().count("disconnected") == 1


def test_a_new_pairing_replaces_the_old_server(parts):
    service, store, audit, _ = parts
    results = []
    for name in ("old", "new"):
        window = service.open_window()
        csr_pem, proof = request(service, window.code, name)
        results.append(service.pair(csr_pem, CHALLENGE, proof))
    old, new = (certs.fingerprint(r.client_cert_pem).hex() for r in results)
    assert not service.is_trusted(old)
    assert service.is_trusted(new)
    assert json.loads(store.files[TRUST_FILE])["peer_name"] == "new"
    assert audit.events[-1][1]["replaced"] == old


def test_malformed_proof_names_the_field_and_costs_no_attempt(parts):
    service, _, _, _ = parts
    service.open_window()
    csr_pem, _ = request(service, core.format_code(b"\x02" * 10))
    with pytest.raises(InvalidArgument) as exc:
        service.pair(csr_pem, CHALLENGE, b"short")
    assert exc.value.field == "proof"
    assert service.status().attempts_left == service.config.max_failures
