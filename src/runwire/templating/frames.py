"""Length-prefixed JSON frames between the server and a template worker, over the worker's stdin and stdout."""

import struct
from typing import IO

import orjson

_HEADER = struct.Struct(">I")


def write_frame(stream: IO[bytes], message: object) -> None:
    body = orjson.dumps(message)
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def read_frame(stream: IO[bytes]) -> object | None:
    """The next message, or None at the end of the stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    message: object = orjson.loads(body)
    return message
