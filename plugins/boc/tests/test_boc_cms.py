"""signData: our detached CMS against OpenSSL as an independent oracle, in both directions."""

from __future__ import annotations

import base64
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cetgql_boc import cms, protocol, sandbox_keys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")

DATA = protocol.pay_signed("CET2026000001", "20260301093000", "001", "30.00", "104110000009999")


def merchant() -> tuple[x509.Certificate, cms.SigningKey]:
    return (
        cms.load_certificate(sandbox_keys.pem(sandbox_keys.MERCHANT_CERT)),
        cms.load_private_key(sandbox_keys.pem(sandbox_keys.MERCHANT_KEY)),
    )


def bank() -> tuple[x509.Certificate, cms.SigningKey]:
    return (
        cms.load_certificate(sandbox_keys.pem(sandbox_keys.BANK_CERT)),
        cms.load_private_key(sandbox_keys.pem(sandbox_keys.BANK_KEY)),
    )


def openssl(*args: str) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *args], capture_output=True, check=False)  # noqa: S603


def openssl_verify(tmp_path: Path, sign_data: str, content: bytes) -> bool:
    (tmp_path / "sig.der").write_bytes(base64.b64decode(sign_data))
    (tmp_path / "content").write_bytes(content)
    result = openssl(
        "cms",
        "-verify",
        "-binary",
        "-noverify",  # no chain to a CA: the certificates are pinned, not chained
        "-inform",
        "DER",
        "-in",
        str(tmp_path / "sig.der"),
        "-content",
        str(tmp_path / "content"),
        "-out",
        str(tmp_path / "out"),
    )
    return result.returncode == 0 and (tmp_path / "out").read_bytes() == content


def openssl_sign(tmp_path: Path, content: bytes, *options: str) -> str:
    (tmp_path / "content").write_bytes(content)
    (tmp_path / "cert.pem").write_text(sandbox_keys.pem(sandbox_keys.BANK_CERT))
    (tmp_path / "key.pem").write_text(sandbox_keys.pem(sandbox_keys.BANK_KEY))
    result = openssl(
        "cms",
        "-sign",
        "-binary",
        "-outform",
        "DER",
        "-in",
        str(tmp_path / "content"),
        "-signer",
        str(tmp_path / "cert.pem"),
        "-inkey",
        str(tmp_path / "key.pem"),
        "-out",
        str(tmp_path / "sig.der"),
        *options,
    )
    assert result.returncode == 0, result.stderr.decode()
    return base64.b64encode((tmp_path / "sig.der").read_bytes()).decode()


@needs_openssl
def test_openssl_accepts_our_signature(tmp_path: Path) -> None:
    certificate, key = merchant()
    sign_data = cms.sign(DATA, certificate, key)
    assert openssl_verify(tmp_path, sign_data, DATA)


@needs_openssl
def test_openssl_rejects_our_signature_over_other_content(tmp_path: Path) -> None:
    certificate, key = merchant()
    sign_data = cms.sign(DATA, certificate, key)
    assert not openssl_verify(tmp_path, sign_data, DATA.replace(b"30.00", b"0.01"))


@needs_openssl
def test_our_signature_is_detached_sha256_der(tmp_path: Path) -> None:
    certificate, key = merchant()
    (tmp_path / "sig.der").write_bytes(base64.b64decode(cms.sign(DATA, certificate, key)))
    printed = openssl(
        "cms", "-cmsout", "-print", "-inform", "DER", "-in", str(tmp_path / "sig.der")
    ).stdout.decode()
    assert "eContent: <ABSENT>" in printed
    assert "sha256" in printed
    assert "SMIMECapabilities" not in printed


@needs_openssl
@pytest.mark.parametrize(
    "options",
    [
        pytest.param(("-md", "sha1"), id="sha1-with-attributes"),
        pytest.param(("-md", "sha256"), id="sha256-with-attributes"),
        pytest.param(("-md", "sha1", "-noattr"), id="sha1-no-attributes"),
        pytest.param(("-md", "sha256", "-nocerts"), id="sha256-no-embedded-certificate"),
    ],
)
def test_we_verify_what_openssl_signs(tmp_path: Path, options: tuple[str, ...]) -> None:
    """The bank's toolkits sign with SHA-1 (which cryptography cannot make): we still verify."""
    certificate, _ = bank()
    sign_data = openssl_sign(tmp_path, DATA, *options)
    cms.verify(sign_data, DATA, certificate)
    with pytest.raises(cms.SignatureError):
        cms.verify(sign_data, DATA + b"0", certificate)


def test_round_trip_and_tampering() -> None:
    certificate, key = merchant()
    sign_data = cms.sign(DATA, certificate, key)
    cms.verify(sign_data, DATA, certificate)
    with pytest.raises(cms.SignatureError, match="digest"):
        cms.verify(sign_data, DATA.replace(b"30.00", b"3000.00"), certificate)


def test_another_certificate_is_refused() -> None:
    certificate, key = merchant()
    bank_certificate, _ = bank()
    with pytest.raises(cms.SignatureError, match="another certificate"):
        cms.verify(cms.sign(DATA, certificate, key), DATA, bank_certificate)


def test_an_impostor_certificate_with_the_same_issuer_and_serial_is_refused() -> None:
    """Someone makes a certificate that names itself like the bank's and signs with their own
    key: the embedded copy is not the pinned certificate, and the key does not verify."""
    bank_certificate, _ = bank()
    impostor_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    impostor = (
        x509.CertificateBuilder()
        .subject_name(bank_certificate.subject)
        .issuer_name(bank_certificate.issuer)
        .serial_number(bank_certificate.serial_number)
        .public_key(impostor_key.public_key())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(impostor_key, hashes.SHA256())
    )
    sign_data = cms.sign(DATA, impostor, impostor_key)
    with pytest.raises(cms.SignatureError, match="embedded signer certificate"):
        cms.verify(sign_data, DATA, bank_certificate)
    # Without the embedded copy, the signature itself fails against the pinned key.
    no_certs = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(DATA)
        .add_signer(impostor, impostor_key, hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [
                pkcs7.PKCS7Options.DetachedSignature,
                pkcs7.PKCS7Options.Binary,
                pkcs7.PKCS7Options.NoCerts,
            ],
        )
    )
    with pytest.raises(cms.SignatureError, match="does not verify"):
        cms.verify(base64.b64encode(no_certs).decode(), DATA, bank_certificate)


def test_ec_keys_work_too() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EC test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .serial_number(7)
        .public_key(key.public_key())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cms.verify(cms.sign(DATA, certificate, key), DATA, certificate)


@pytest.mark.parametrize(
    "sign_data",
    ["", "not base64!", base64.b64encode(b"\x30\x03\x02\x01\x01").decode(), "MA=="],
)
def test_garbage_is_a_signature_error(sign_data: str) -> None:
    certificate, _ = merchant()
    with pytest.raises(cms.SignatureError):
        cms.verify(sign_data, DATA, certificate)


def test_a_key_that_is_not_the_certificates_is_refused_when_signing() -> None:
    certificate, _ = merchant()
    _, bank_key = bank()
    with pytest.raises(cms.CertificateError):
        cms.sign(DATA, certificate, bank_key)


def test_bad_pem_is_a_certificate_error() -> None:
    with pytest.raises(cms.CertificateError):
        cms.load_certificate("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----")
    with pytest.raises(cms.CertificateError):
        cms.load_private_key("not a key")
