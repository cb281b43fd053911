import uuid

from runwire.runs.list_cache import ListCache


def test_a_body_is_served_only_for_its_version() -> None:
    cache, chat = ListCache(1000), uuid.uuid4()
    cache.put(chat, "all", 3, b"three")
    assert cache.get(chat, "all", 3) == b"three"
    assert cache.get(chat, "all", 4) is None
    assert cache.get(chat, "other filter", 3) is None
    cache.put(chat, "all", 4, b"four!")
    assert cache.get(chat, "all", 3) is None and cache.get(chat, "all", 4) == b"four!"
    assert cache.size_bytes == 5


def test_memory_stays_within_its_bound_least_recently_used_first_out() -> None:
    cache = ListCache(100)
    chats = [uuid.uuid4() for _ in range(4)]
    for chat in chats[:3]:
        cache.put(chat, "all", 1, b"x" * 30)
    assert cache.get(chats[0], "all", 1) is not None  # now the most recently used
    cache.put(chats[3], "all", 1, b"y" * 30)
    assert cache.size_bytes == 90
    assert cache.get(chats[1], "all", 1) is None
    assert cache.get(chats[0], "all", 1) is not None and cache.get(chats[3], "all", 1) is not None
    cache.put(uuid.uuid4(), "all", 1, b"z" * 101)
    assert cache.size_bytes <= 100
