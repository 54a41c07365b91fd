import hashlib

import pytest

from satbridge.core import pairing
from satbridge.errors import InvalidArgument


def test_code_has_80_bits_in_four_groups():
    code = pairing.format_code(bytes(range(10)))
    assert len(code) == 19
    assert code.count("-") == 3
    assert all(ch in pairing.ALPHABET for ch in code.replace("-", ""))
    assert pairing.CODE_CHARS * 5 >= 80


def test_distinct_entropy_gives_distinct_codes():
    codes = {pairing.format_code(i.to_bytes(10, "big")) for i in range(1000)}
    assert len(codes) == 1000


@pytest.mark.parametrize("typed", ["k7qm 9t2x hf4d pw8r", "K7QM-9T2X-HF4D-PW8R", "K7QM9T2XHF4DPW8R"])
def test_code_is_normalised(typed):
    assert pairing.normalize_code(typed) == "K7QM9T2XHF4DPW8R"


def test_look_alikes_map_to_digits():
    assert pairing.normalize_code("OOOO-IIII-LLLL-0000") == "0000111111110000"


@pytest.mark.parametrize("bad", ["", "K7QM-9T2X-HF4D", "K7QM-9T2X-HF4D-PW8R-AAAA", "K7QM-9T2X-HF4D-PW8U", "ü" * 16])
def test_bad_codes_name_the_field(bad):
    with pytest.raises(InvalidArgument) as exc:
        pairing.normalize_code(bad)
    assert exc.value.field == "code"


def test_key_is_not_the_code_and_is_stable():
    key = pairing.code_key("k7qm-9t2x-hf4d-pw8r")
    assert key == pairing.code_key("K7QM9T2XHF4DPW8R")
    assert b"K7QM" not in key
    assert len(key) == 32


def test_proofs_bind_every_input():
    key, fp, csr, ch = pairing.code_key("K7QM9T2XHF4DPW8R"), b"f" * 32, b"csr", b"c" * 32
    base = pairing.client_proof(key, fp, csr, ch)
    assert base != pairing.client_proof(pairing.code_key("K7QM9T2XHF4DPW8S"), fp, csr, ch)
    assert base != pairing.client_proof(key, b"g" * 32, csr, ch)
    assert base != pairing.client_proof(key, fp, b"csr2", ch)
    assert base != pairing.client_proof(key, fp, csr, b"d" * 32)
    answer = pairing.satellite_proof(key, fp, csr, ch, b"cert")
    assert answer != base, "the satellite's proof uses its own label"
    assert answer != pairing.satellite_proof(key, fp, csr, ch, b"other cert")
    assert hashlib.sha256(b"").digest() != base


def test_window_expires_and_runs_out_of_attempts():
    window = pairing.open_window("K7QM9T2XHF4DPW8R", now=100.0, minutes=15, attempts=2)
    assert window.is_open(100.0)
    assert window.is_open(100.0 + 899)
    assert not window.is_open(100.0 + 900)
    once = window.after_failure()
    assert once.is_open(101.0)
    assert once.attempts_left == 1
    assert not once.after_failure().is_open(101.0)
    assert pairing.PairingWindow.from_json(window.to_json()) == window


def c(peer: str, inode: int | None = None) -> pairing.Connection:
    return (peer, inode)


def test_challenge_is_single_use_and_bound_to_its_connection():
    book = pairing.ChallengeBook(ttl=60)
    book.issue(b"a" * 32, c("ipv4:127.0.0.1:1000", 7), now=0)
    assert not book.redeem(b"a" * 32, c("ipv4:127.0.0.1:2000", 8), now=1), "another connection"
    assert not book.redeem(b"a" * 32, c("ipv4:127.0.0.1:1000", 9), now=1), "the same source port, a new connection"
    assert book.redeem(b"a" * 32, c("ipv4:127.0.0.1:1000", 7), now=1), "another connection's try cannot use it up"
    book.issue(b"d" * 32, c("ipv4:127.0.0.1:1000"), now=0)
    assert not book.redeem(b"x" * 32, c("ipv4:127.0.0.1:1000"), now=1), "a wrong challenge"
    assert not book.redeem(b"d" * 32, c("ipv4:127.0.0.1:1000"), now=1), "used up by its own connection's wrong try"
    book.issue(b"b" * 32, c("p"), now=0)
    assert book.redeem(b"b" * 32, c("p"), now=1)
    assert not book.redeem(b"b" * 32, c("p"), now=1), "single use"
    book.issue(b"c" * 32, c("p"), now=0)
    assert not book.redeem(b"c" * 32, c("p"), now=61), "expired"


def test_a_challenge_dies_with_its_connection():
    """Red team finding 6: keyed by address:port, a new connection from the same source port
    after the first one closed found the first one's challenge."""
    book = pairing.ChallengeBook()
    first = c("ipv4:192.0.2.7:40000", 100)
    book.issue(b"a" * 32, first, now=0)
    book.prune({c("ipv4:192.0.2.8:1", 5)})  # the first connection is missing from one read
    assert len(book) == 1, "one read that misses a connection is not proof that it closed"
    book.prune({first})  # there after all (/proc/net/tcp is not read as a snapshot)
    book.prune(set())
    assert len(book) == 1, "missed once since it was last seen"
    book.prune(set())
    assert len(book) == 0, "missed by two looks in a row: closed"
    assert not book.redeem(b"a" * 32, first, now=3)


def test_challenge_book_is_bounded():
    book = pairing.ChallengeBook(capacity=3)
    for i in range(10):
        book.issue(bytes([i]) * 32, c("p"), now=0)
    assert len(book) == 1, "one challenge per connection: the newest"
    assert book.redeem(bytes([9]) * 32, c("p"), now=0)


def test_no_flood_from_other_addresses_evicts_a_challenge():
    book = pairing.ChallengeBook(capacity=64, per_address=8)
    honest = c("ipv4:192.0.2.10:40000", 1)
    assert book.issue(b"h" * 32, honest, now=0)
    issued = [book.issue(p.to_bytes(32, "big"), c(f"ipv4:198.51.100.7:{p}", p), now=1) for p in range(20000)]
    assert sum(1 for x in issued if x) == 8, "one flooding address within `hold`: per_address, then refused"
    assert len(book) == 9
    for host in range(200):  # many addresses: the book fills, then refuses, never evicts
        book.issue(b"z" * 32, c(f"ipv6:[2001:db8:{host:x}::1]:443"), now=2)
    assert len(book) == 64
    assert book.issue(b"n" * 32, c("ipv4:203.0.113.1:1"), now=3) is None
    assert book.redeem(b"h" * 32, honest, now=4)
    assert book.issue(b"n" * 32, c("ipv4:203.0.113.1:1"), now=4), "a redeemed slot is free again"


def test_one_address_cannot_lock_itself_or_others_out():
    """Red team finding 5: 8 GetIdentity calls denied a whole address for 125 s. Now the address's
    newest evicts its own oldest (once that is `hold` seconds old), and unused ones expire fast."""
    book = pairing.ChallengeBook(ttl=30, per_address=8, hold=2)
    for p in range(8):
        assert book.issue(b"x" * 32, c(f"ipv4:198.51.100.7:{p}", p), now=0)
    assert book.issue(b"x" * 32, c("ipv4:198.51.100.7:99", 99), now=1) is None, "all fresh: refused"
    admin = c("ipv4:198.51.100.7:5000", 5000)
    assert book.issue(b"a" * 32, admin, now=3), "the address's oldest goes, not the admin"
    assert book.redeem(b"a" * 32, admin, now=3.5)
    other = c("ipv4:192.0.2.1:1", 1)
    assert book.issue(b"o" * 32, other, now=3)
    assert book.issue(b"z" * 32, c("ipv4:192.0.2.1:2", 2), now=40), "unused ones expired after ttl"


def test_ipv6_peers_are_bounded_per_64():
    assert pairing.peer_address("ipv6:[2001:db8:1:2:aaaa::1]:5000") == "ipv6:2001:db8:1:2::/64"
    assert pairing.peer_address("ipv6:[2001:db8:1:2:bbbb::9]:6000") == "ipv6:2001:db8:1:2::/64"
    assert pairing.peer_address("ipv4:192.0.2.1:80") == "ipv4:192.0.2.1"
    assert pairing.peer_address("unix:/run/x") == "unix:/run/x"


def test_a_live_challenge_is_never_evicted_by_its_own_address_for_its_whole_life():
    """The hold follows the life: with a 60 s life and a 30 s hold, a storm from the honest
    client's own address evicted its challenge after 30 s (CI found it in the storm test)."""
    book = pairing.ChallengeBook(ttl=60, per_address=2)
    honest = c("ipv4:127.0.0.1:1000", 1)
    book.issue(b"h" * 32, honest, now=0)
    book.issue(b"x" * 32, c("ipv4:127.0.0.1:1001", 2), now=0)
    assert book.issue(b"y" * 32, c("ipv4:127.0.0.1:1002", 3), now=45) is None, "refused, not evicting"
    assert book.redeem(b"h" * 32, honest, now=50)
