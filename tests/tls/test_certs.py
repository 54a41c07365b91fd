import datetime as dt
import ssl

import pytest
from cryptography import x509

from satbridge.errors import InvalidArgument
from satbridge.tls import certs

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def identity():
    return certs.create_identity(NOW, "sat-1")


def test_identity_is_a_pinnable_ca(identity):
    cert = x509.load_pem_x509_certificate(identity.cert_pem)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [certs.TLS_SERVER_NAME]
    assert cert.not_valid_before_utc == NOW - dt.timedelta(days=1), "backdated a day"
    assert cert.public_key().curve.name == "secp256r1"
    assert identity.fingerprint == certs.fingerprint(identity.cert_pem)
    assert len(identity.fingerprint) == 32


def test_signed_client_certificate(identity):
    key = certs.new_client_key()
    csr = certs.check_csr(certs.make_csr(key, "central-1"))
    cert_pem = certs.sign_client(identity, csr, NOW)
    assert certs.common_name(cert_pem) == "central-1"
    assert certs.issued_by(cert_pem, identity.cert_pem)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert certs.cert_der(cert_pem) == ssl.PEM_cert_to_DER_cert(cert_pem.decode())
    other = certs.create_identity(NOW, "sat-2")
    assert not certs.issued_by(cert_pem, other.cert_pem)


@pytest.mark.parametrize(
    "csr",
    [
        b"",
        b"not a csr",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        b"x" * 20000,
    ],
)
def test_bad_csrs_name_the_field(csr):
    with pytest.raises(InvalidArgument) as exc:
        certs.check_csr(csr)
    assert exc.value.field == "csr_pem"


@pytest.mark.parametrize("name", ["", " leading", "a" * 65, "new\nline", "semi;colon"])
def test_bad_server_names_are_refused(name):
    with pytest.raises(InvalidArgument):
        certs.make_csr(certs.new_client_key(), name)


def test_der_round_trip(identity):
    assert certs.der_to_pem(certs.cert_der(identity.cert_pem)) == identity.cert_pem
    with pytest.raises(InvalidArgument):
        certs.der_to_pem(b"junk")
