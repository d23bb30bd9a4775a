"""What a credential looks like, and what Pulumi ciphertext looks like.

One list for both sides: the stack config refuses a credential-shaped value in any plain key
(stackconfig/files.py, booking_shared/project.py) and the policy pack refuses one in a plain-text Worker
binding or Pages variable (policies/credentials.py).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

# What a leaked credential looks like in a plain-text value.
CREDENTIAL_PATTERNS: dict[str, re.Pattern[str]] = {
    "a Paystack secret key": re.compile(r"\bsk_(live|test)_[0-9A-Za-z]{8,}"),
    "a bearer token": re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]{16,}"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "a JSON service-account key": re.compile(r"\"private_key\"\s*:"),
    "a Meta/WhatsApp access token": re.compile(r"\bEAA[A-Za-z0-9]{20,}"),
}

# Provider config keys that hold a credential (`cloudflare:apiToken`, `cloudflare:apiKey`,
# `aws:secretKey`, ...): judged by the name after the namespace, since every provider names its
# own. Such a key is only ever acceptable as a `secure:` entry.
_CREDENTIAL_KEY = re.compile(r"(token|secret|password|passphrase|credentials?|key)$", re.IGNORECASE)

# Pulumi's symmetric crypter (the passphrase provider, and the awskms/azurekeyvault/gcpkms/hashivault
# providers, which wrap its data key): `v1:` + base64 of the 12-byte AES-GCM nonce + `:` + base64 of
# the ciphertext with its 16-byte tag (sdk/go/common/resource/config/crypt.go).
_SYMMETRIC = re.compile(r"v1:([A-Za-z0-9+/]+={0,2}):([A-Za-z0-9+/]+={0,2})")
_NONCE_BYTES, _TAG_BYTES = 12, 16
# Pulumi Cloud's service provider stores the service's ciphertext as plain base64. Every published
# sample starts with the same 4-byte version header (base64 `AAABA...`) and carries at least 32
# bytes of envelope; requiring both keeps a plain base64-looking token from passing as ciphertext.
_SERVICE_HEADER = b"\x00\x00\x01\x00"
_SERVICE_MIN_BYTES = 32


def looks_like_credential(value: Any) -> str | None:
    """The kind of credential `value` looks like (e.g. "a Paystack secret key"), or None."""
    if not isinstance(value, str):
        return None
    return next((kind for kind, pattern in CREDENTIAL_PATTERNS.items() if pattern.search(value)), None)


def is_credential_key(key: str) -> bool:
    """True for a config key whose name says it holds a credential, e.g. `cloudflare:apiToken`."""
    return bool(_CREDENTIAL_KEY.search(key.rsplit(":", 1)[-1]))


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def looks_like_ciphertext(value: Any) -> bool:
    """True when a `secure:` value can be Pulumi ciphertext: a symmetric `v1:` value or a service one.

    Anything else (empty, a number, null, a plain key wrapped in `secure:`) cannot be decrypted by
    `pulumi up` and usually means a credential was committed in plain text.
    """
    if not isinstance(value, str) or looks_like_credential(value):
        return False
    symmetric = _SYMMETRIC.fullmatch(value)
    if symmetric:
        nonce, sealed = _b64(symmetric.group(1)), _b64(symmetric.group(2))
        return nonce is not None and sealed is not None and len(nonce) == _NONCE_BYTES and len(sealed) >= _TAG_BYTES
    raw = _b64(value)
    return raw is not None and len(raw) >= _SERVICE_MIN_BYTES and raw.startswith(_SERVICE_HEADER)
