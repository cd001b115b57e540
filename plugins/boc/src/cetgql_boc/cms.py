"""Detached PKCS#7 / CMS signatures as BOC's B2C gateway uses them (``signData``).

Signing uses ``cryptography``'s PKCS#7 builder: SHA-256, the signer certificate embedded, the
usual signed attributes (content type, signing time, message digest) and no S/MIME
capabilities, DER, base64 on the wire. ``cryptography`` cannot *verify* PKCS#7, so
verification parses the SignedData with ``asn1crypto`` and checks the signer's signature with
``cryptography`` itself. It accepts SHA-1 as well as SHA-2 digests because the bank's own
toolkits have long signed with SHA-1; cetgql never signs with SHA-1.

Trust never comes from inside the message: the signature is checked with the public key of the
certificate configured in the merchant settings, the SignerInfo must name that certificate,
and a certificate embedded for that signer must be byte-for-byte the configured one. There is
no chain or validity-period check: the configured certificate is pinned, as the bank's SDKs do.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from functools import lru_cache

from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

__all__ = [
    "CertificateError",
    "SignatureError",
    "load_certificate",
    "load_private_key",
    "sign",
    "verify",
]


class SignatureError(Exception):
    """A signature that does not verify, or a structure that is not a usable detached CMS."""


class CertificateError(ValueError):
    """A configured certificate or key that cannot be loaded (a settings problem)."""


SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

# Signature algorithm identifiers a SignerInfo may carry, and the digest they imply (None when
# the identifier names only the key type and the SignerInfo's digest algorithm decides).
_RSA_SIGNATURES: dict[str, str | None] = {
    "rsassa_pkcs1v15": None,
    "sha1_rsa": "sha1",
    "sha224_rsa": "sha224",
    "sha256_rsa": "sha256",
    "sha384_rsa": "sha384",
    "sha512_rsa": "sha512",
}
_EC_SIGNATURES: dict[str, str | None] = {
    "ecdsa": None,
    "sha1_ecdsa": "sha1",
    "sha224_ecdsa": "sha224",
    "sha256_ecdsa": "sha256",
    "sha384_ecdsa": "sha384",
    "sha512_ecdsa": "sha512",
}


@lru_cache(maxsize=64)
def load_certificate(pem: str) -> x509.Certificate:
    """Parse a PEM certificate from the settings; cached because every message needs one."""
    try:
        return x509.load_pem_x509_certificate(pem.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise CertificateError("not a PEM X.509 certificate") from exc


@lru_cache(maxsize=64)
def load_private_key(pem: str) -> SigningKey:
    """Parse an unencrypted PEM private key (PKCS#8 or PKCS#1) from the settings."""
    try:
        key = serialization.load_pem_private_key(pem.strip().encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise CertificateError("not an unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CertificateError("the private key must be RSA or EC")
    return key


def sign(data: bytes, certificate: x509.Certificate, key: SigningKey) -> str:
    """Sign ``data`` and return the detached SignedData, DER, base64 (the ``signData`` value)."""
    if certificate.public_key() != key.public_key():
        raise CertificateError("the private key does not belong to the certificate")
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(data)
        .add_signer(certificate, key, hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [
                pkcs7.PKCS7Options.DetachedSignature,
                pkcs7.PKCS7Options.Binary,  # sign the bytes as they are, no CRLF translation
                pkcs7.PKCS7Options.NoCapabilities,
            ],
        )
    )
    return base64.b64encode(der).decode("ascii")


def verify(sign_data: str, data: bytes, certificate: x509.Certificate) -> None:
    """Check that ``sign_data`` (base64 DER detached CMS) signs ``data`` with ``certificate``.

    Raises SignatureError on any doubt: a malformed structure, several signers, a signer other
    than the configured certificate, a digest mismatch or a bad signature.
    """
    try:
        der = base64.b64decode("".join(sign_data.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("signData is not base64") from exc
    if not der:
        raise SignatureError("signData is empty")
    try:
        _verify_der(der, data, certificate)
    except SignatureError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        # asn1crypto parses lazily: a malformed inner structure surfaces on first access.
        raise SignatureError(f"malformed CMS structure: {exc}") from exc


def _verify_der(der: bytes, data: bytes, certificate: x509.Certificate) -> None:
    info = asn1_cms.ContentInfo.load(der, strict=True)
    if info["content_type"].native != "signed_data":
        raise SignatureError("not a CMS SignedData")
    signed_data = info["content"]
    encap = signed_data["encap_content_info"]
    if encap["content_type"].native != "data":
        raise SignatureError("the signed content is not of type data")
    if encap["content"].native is not None and encap["content"].native != data:
        raise SignatureError("the embedded content differs from the signed fields")

    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        raise SignatureError("exactly one signer expected")
    signer = signer_infos[0]

    pinned = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    if not _names_certificate(signer["sid"], pinned):
        raise SignatureError("signed by another certificate than the configured one")
    _check_embedded_certificate(signed_data, pinned)

    digest_name = signer["digest_algorithm"]["algorithm"].native
    if digest_name not in _DIGESTS:
        raise SignatureError(f"unsupported digest algorithm {digest_name}")
    digest = _DIGESTS[digest_name]()

    signed_attrs = signer["signed_attrs"]
    if signed_attrs.native:  # present and non-empty: the signature covers the attributes
        _check_signed_attributes(signed_attrs, data, digest)
        # RFC 5652 §5.4: the signature is over the DER of the attributes as a SET OF, while
        # they travel with an implicit [0] tag; swap the tag byte on the received encoding.
        encoded = signed_attrs.dump()
        message = b"\x31" + encoded[1:]
    else:
        message = data

    _check_signature(signer, certificate, message, digest, digest_name)


def _names_certificate(sid: asn1_cms.SignerIdentifier, pinned: asn1_x509.Certificate) -> bool:
    """Whether the SignerInfo's identifier points at the configured certificate."""
    if sid.name == "issuer_and_serial_number":
        chosen = sid.chosen
        return bool(
            chosen["serial_number"].native == pinned.serial_number
            and chosen["issuer"] == pinned.issuer
        )
    if sid.name == "subject_key_identifier":
        key_id = pinned.key_identifier
        return key_id is not None and hmac.compare_digest(sid.chosen.native, key_id)
    return False


def _check_embedded_certificate(
    signed_data: asn1_cms.SignedData, pinned: asn1_x509.Certificate
) -> None:
    """An embedded copy of the signer's certificate must be the configured one, exactly."""
    certificates = signed_data["certificates"]
    if not certificates.native:
        return
    pinned_der = pinned.dump()
    for choice in certificates:
        if choice.name != "certificate":
            continue
        embedded = choice.chosen
        same_id = (
            embedded.serial_number == pinned.serial_number and embedded.issuer == pinned.issuer
        )
        if same_id and embedded.dump() != pinned_der:
            raise SignatureError("the embedded signer certificate is not the configured one")


def _check_signed_attributes(
    signed_attrs: asn1_cms.CMSAttributes, data: bytes, digest: hashes.HashAlgorithm
) -> None:
    content_types: list[str] = []
    message_digests: list[bytes] = []
    for attribute in signed_attrs:
        kind = attribute["type"].native
        values = attribute["values"]
        if kind == "content_type":
            content_types.extend(value.native for value in values)
        elif kind == "message_digest":
            message_digests.extend(value.native for value in values)
    if content_types != ["data"]:
        raise SignatureError("the content-type attribute must be data")
    if len(message_digests) != 1:
        raise SignatureError("exactly one message-digest attribute expected")
    hasher = hashes.Hash(digest)
    hasher.update(data)
    if not hmac.compare_digest(message_digests[0], hasher.finalize()):
        raise SignatureError("the message digest does not match the signed fields")


def _check_signature(
    signer: asn1_cms.SignerInfo,
    certificate: x509.Certificate,
    message: bytes,
    digest: hashes.HashAlgorithm,
    digest_name: str,
) -> None:
    algorithm = signer["signature_algorithm"]["algorithm"].native
    signature = signer["signature"].native
    public_key = certificate.public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and algorithm in _RSA_SIGNATURES:
            implied = _RSA_SIGNATURES[algorithm]
            if implied not in (None, digest_name):
                raise SignatureError("signature and digest algorithms disagree")
            public_key.verify(signature, message, padding.PKCS1v15(), digest)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm in _EC_SIGNATURES:
            implied = _EC_SIGNATURES[algorithm]
            if implied not in (None, digest_name):
                raise SignatureError("signature and digest algorithms disagree")
            public_key.verify(signature, message, ec.ECDSA(digest))
        else:
            raise SignatureError(f"unsupported signature algorithm {algorithm}")
    except InvalidSignature as exc:
        raise SignatureError("the signature does not verify") from exc
