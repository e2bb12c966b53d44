"""How large a zip archive says its directory is, read before :mod:`zipfile` reads it.

:mod:`zipfile` reads the whole central directory as the archive opens, however many
members it declares. The readers of archives (``.npz`` data sets, checkpoints) first
read the sizes the directory's end records declare, as :mod:`zipfile` will find them
(the end of central directory record and, where there is one, its zip64 form), and
refuse a directory too large for what they read.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Optional

_EOCD = struct.Struct("<4s4H2LH")  # the end of central directory record
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # its zip64 form, before the locator
_EOCD64_LOCATOR = 20


def directory_sizes(f: BinaryIO, size: int) -> Optional[list[tuple[int, int]]]:
    """``(members, directory bytes)`` of each end record of the zip archive ``f`` (``size``
    bytes long): the classic record's and, where present, the zip64 record's; ``None``
    when the archive has no end record (not a zip, or truncated)."""
    start = max(0, size - _EOCD.size - 0xFFFF)  # the record, then at most a 64 KiB comment
    f.seek(start)
    tail = f.read()
    if tail[-_EOCD.size:-_EOCD.size + 4] == b"PK\x05\x06" and tail[-2:] == b"\0\0":
        at = len(tail) - _EOCD.size  # no comment: the record ends the file
    else:
        at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        return None
    records = [tuple(_EOCD.unpack_from(tail, at)[4:6])]
    locator = start + at - _EOCD64_LOCATOR
    if locator >= _EOCD64.size:
        f.seek(locator)
        if f.read(4) == b"PK\x06\x07":
            f.seek(locator - _EOCD64.size)
            record = f.read(_EOCD64.size)
            if len(record) == _EOCD64.size and record[:4] == b"PK\x06\x06":
                records.append(tuple(_EOCD64.unpack(record)[7:9]))
    return [(int(entries), int(directory)) for entries, directory in records]
