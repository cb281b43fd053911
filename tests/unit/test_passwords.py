"""Password hashes: argon2id at the configured cost, and verifiable whatever cost they were made at."""

from runwire.auth.passwords import Passwords
from runwire.config import Settings


def _configured(settings: Settings) -> Passwords:
    return Passwords(memory_kib=settings.password_hash_memory_kib, time_cost=settings.password_hash_time_cost)


def test_by_default_a_password_is_hashed_with_argon2id_at_argon2s_own_cost() -> None:
    passwords = _configured(Settings())
    password_hash = passwords.hash("correct horse")
    assert password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.verify(password_hash, "correct horse")
    assert not passwords.verify(password_hash, "wrong horse")


def test_a_hash_made_at_another_cost_still_verifies() -> None:
    cheap = Passwords(memory_kib=32, time_cost=1)
    costly = _configured(Settings())
    made_cheaply = cheap.hash("correct horse")
    assert made_cheaply.startswith("$argon2id$v=19$m=32,t=1,p=4$")
    assert costly.verify(made_cheaply, "correct horse")
    assert cheap.verify(costly.hash("correct horse"), "correct horse")


def test_an_unknown_user_or_a_malformed_hash_never_verifies() -> None:
    passwords = Passwords(memory_kib=32, time_cost=1)
    assert not passwords.verify(None, "runwire-decoy-password")
    assert not passwords.verify("not a hash", "anything")
