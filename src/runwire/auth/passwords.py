"""argon2id password hashing, at the cost the settings give (by default argon2's own: RFC 9106's low-memory
profile, 64 MiB and 3 passes)."""

import os
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2's lanes: a hash is computed on up to this many threads.
PARALLELISM = 4


class Passwords:
    def __init__(self, *, memory_kib: int, time_cost: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=PARALLELISM)
        # Verified against when the email is unknown, so that both failures take the same time.
        self._decoy_hash = self._hasher.hash("runwire-decoy-password")
        # Each computation takes a core for tens of milliseconds: more at once than there are cores only queues them
        # inside the CPU while holding threads that other requests need. Waiting here, they hold only a thread each.
        self._computations = threading.BoundedSemaphore(os.cpu_count() or 1)

    def hash(self, password: str) -> str:
        with self._computations:
            return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        with self._computations:
            try:
                return self._hasher.verify(password_hash or self._decoy_hash, password) and password_hash is not None
            except (VerificationError, InvalidHashError):
                return False
