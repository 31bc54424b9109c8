"""GitHub's webhook signature: HMAC-SHA256 of the raw body, `X-Hub-Signature-256: sha256=<hex>`.

The SHA-1 header (`X-Hub-Signature`) is never accepted, even when it is the
only one a delivery carries.
"""
from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature-256"
PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The header value GitHub would send (tests and the benchmark sign their deliveries with it)."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    if not secret:
        return False  # fail closed: there is no "unsigned mode"
    if not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode(errors="replace"))
