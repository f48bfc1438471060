"""Reading the expiry of the certificate in a TLS Secret."""

from __future__ import annotations

from datetime import datetime

from cryptography import x509


class CertificateError(ValueError):
    """tls.crt is missing or does not hold a PEM or DER certificate."""


def certificate_not_after(data: bytes | None) -> datetime:
    """notAfter of the first (leaf) certificate in `tls.crt`, as an aware UTC datetime."""
    if not data:
        raise CertificateError("tls.crt is missing or empty")
    try:
        if b"-----BEGIN" in data:
            certificate = x509.load_pem_x509_certificates(data)[0]
        else:
            certificate = x509.load_der_x509_certificate(data)
    except (ValueError, IndexError, TypeError) as error:
        raise CertificateError("tls.crt does not hold a readable X.509 certificate") from error
    return certificate.not_valid_after_utc
