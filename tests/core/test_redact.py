"""Redaction by value for the support bundle (core/redact.py)."""

from hypothesis import given
from hypothesis import strategies as st

from satbridge.core.redact import Redactor, redact_text

SECRETS = [
    ("DB_PASSWORD=hunter2 user=bob", "hunter2"),
    ("url: https://admin:s3cr3t@example.invalid/x", "s3cr3t"),
    ('{"db": {"password": "pw1", "api_key":"abc123"}}', "pw1"),
    ('{"db": {"password": "pw1", "api_key":"abc123"}}', "abc123"),
    ("Authorization: Bearer eyJhbGciOi.x.y", "eyJhbGciOi.x.y"),
    ("env: [PATH=/bin, DB_PASSWORD=list-secret]", "list-secret"),
    ("token: t0k3n-value", "t0k3n-value"),
]


def test_secrets_are_masked_by_value_and_lengths_kept():
    for text, secret in SECRETS:
        out = redact_text(text)
        assert secret not in out, text
        assert len(out) == len(text)
    assert redact_text("user=bob level=info") == "user=bob level=info"


def test_a_private_key_block_under_any_name_is_masked():
    pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBODY1\nQUJDRA==\n-----END EC PRIVATE KEY-----\n"
    text = f"note = '''\n{pem}'''\nafter = 1\n"
    out = redact_text(text)
    assert "MHcCAQEEIBODY1" not in out
    assert "QUJDRA==" not in out
    assert "after = 1" in out
    assert len(out) == len(text)
    one_line = "key: -----BEGIN PRIVATE KEY-----\\nMIIEvQ\\n-----END PRIVATE KEY-----"
    assert "MIIEvQ" not in redact_text(one_line)


@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=6))
def test_the_stream_keeps_its_length_and_does_not_depend_on_chunking(data, cuts):
    whole = Redactor()
    expected = whole.feed(data) + whole.flush()
    assert len(expected) == len(data)
    pieces = Redactor()
    got, start = b"", 0
    for cut in [*sorted(cuts), len(data)]:
        got += pieces.feed(data[start:cut])
        start = max(start, cut)
    got += pieces.flush()
    assert got == expected


@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40).filter(
        lambda s: s.strip() and "\n" not in s
    )
)
def test_a_password_pair_never_leaves(secret):
    value = "".join(c for c in secret if not c.isspace() and c not in "\"',;&}]*") or "x"
    assert value not in redact_text(f"SMTP_PASSWORD={value}\n").replace("SMTP_PASSWORD=", "")
