"""argon2id password hashing."""

import os
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified against when the email is unknown, so that both failures take the same time.
_DECOY_HASH = _hasher.hash("runwire-decoy-password")
# Each computation takes a core for tens of milliseconds: more at once than there are cores only queues them
# inside the CPU while holding threads that other requests need. Waiting here, they hold only a thread each.
_computations = threading.BoundedSemaphore(os.cpu_count() or 1)


def hash_password(password: str) -> str:
    with _computations:
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    with _computations:
        try:
            return _hasher.verify(password_hash or _DECOY_HASH, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False
