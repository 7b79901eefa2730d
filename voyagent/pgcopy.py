"""The values of a one-text-column ``COPY (…) TO STDOUT (FORMAT binary)``, as the bytes arrive.

The binary format frames each row (a field count and a length before the value) and escapes nothing, so a value
that is already a finished record (a CSV line, say) passes through byte for byte. The text and CSV formats would
escape or quote it again.
"""

from __future__ import annotations

import struct

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_HEADER = struct.Struct(">11sIi")  # signature, flags, length of the header extension that follows
_ROW = struct.Struct(">hi")  # field count (-1: the trailer), then the length of the first field (-1: NULL)


class TextColumn:
    """Feed it the chunks of the stream in order; each call returns the bytes of the values completed so far."""

    def __init__(self) -> None:
        self.rows = 0
        self.done = False  # the trailer has been read
        self._pending = b""
        self._started = False

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk if self._pending else chunk
        end = len(data)
        pos = 0
        if not self._started:
            if end < _HEADER.size:
                self._pending = data
                return b""
            signature, _, extension = _HEADER.unpack_from(data)
            if signature != _SIGNATURE:
                raise ValueError("not a binary COPY stream")
            if end < _HEADER.size + extension:
                self._pending = data
                return b""
            pos = _HEADER.size + extension
            self._started = True
        values = []
        append, unpack, row_size = values.append, _ROW.unpack_from, _ROW.size
        rows = 0
        while end - pos >= row_size:  # a whole row head (or the trailer and more)
            fields, length = unpack(data, pos)
            if fields != 1:
                if fields == -1:  # the trailer
                    break
                raise ValueError(f"expected one column per row, got {fields}")
            start = pos + row_size
            stop = start + length if length > 0 else start  # -1: NULL, written as nothing
            if stop > end:
                break
            if stop > start:
                append(data[start:stop])
            pos = stop
            rows += 1
        self.rows += rows
        if end - pos >= 2 and data[pos:pos + 2] == b"\xff\xff":  # the trailer
            self.done = True
            pos += 2
        self._pending = data[pos:]
        return b"".join(values)
