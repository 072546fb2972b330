"""AWS event-stream framing (application/vnd.amazon.eventstream), as botocore's eventstream.py reads it.

A message: 12-byte prelude (total length, headers length, CRC32 of those 8 bytes; big-endian u32),
headers (name length u8, name, type u8 = 7 string, value length u16, value), payload, and a CRC32
of everything before it.
"""

from __future__ import annotations

import struct
import zlib

STRING = 7


def encode_headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", STRING, len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    raw_headers = encode_headers(headers)
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(raw_headers))
    prelude += struct.pack("!I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + raw_headers + payload
    return message + struct.pack("!I", zlib.crc32(message) & 0xFFFFFFFF)


def event(event_type: str, payload: bytes, content_type: str = "application/octet-stream") -> bytes:
    return encode_message({":message-type": "event", ":event-type": event_type, ":content-type": content_type},
                          payload)


def exception(exception_type: str, payload: bytes) -> bytes:
    return encode_message({":message-type": "exception", ":exception-type": exception_type,
                           ":content-type": "application/json"}, payload)
