"""The chat lists' bodies, kept in this process by chat, filter and chat version, least recently used first out.

Never stale by construction: a body is served only for the version it was built at, and a request reads the chat's
current version first. Each process keeps its own; the version read on every request keeps several processes exact.
"""

import threading
import uuid
from collections import OrderedDict


class ListCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._bodies: OrderedDict[tuple[uuid.UUID, str], tuple[int, bytes]] = OrderedDict()
        self._bytes = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, chat_id: uuid.UUID, filter_key: str, version: int) -> bytes | None:
        with self._lock:
            entry = self._bodies.get((chat_id, filter_key))
            if entry is None or entry[0] != version:
                return None
            self._bodies.move_to_end((chat_id, filter_key))
            return entry[1]

    def put(self, chat_id: uuid.UUID, filter_key: str, version: int, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._bodies.pop((chat_id, filter_key), None)
            if old is not None:
                self._bytes -= len(old[1])
            self._bodies[(chat_id, filter_key)] = (version, body)
            self._bytes += len(body)
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._bodies.popitem(last=False)
                self._bytes -= len(evicted)
