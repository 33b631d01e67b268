"""The zip archive of a workbook's parts, written faster than ``zipfile`` writes it for xlsxwriter.

A report workbook is a hundred or more small XML parts (each sheet, table, chart and drawing is its own
part), and xlsxwriter zips them at deflate level 6 through ``zipfile``: a quarter of the workbook's
closing time. Here each part is deflated at level 1 (about twice as fast; the file is some 10 % larger)
with a window no larger than the part (a 500-byte part does not set up 256 KB of compression state), and
the archive is written in one pass: each local header written once, with its sizes and CRC known. The
entries are those ``zipfile`` writes for xlsxwriter (same names, order, 1980-01-01 timestamp, attributes);
only the compressed bytes differ. With ``deflate`` set to zipfile's own settings the file is byte for
byte xlsxwriter's (tests/agents/test_report_xlsx_zip.py). An archive that would need ZIP64 (2 GB, or more
than 65,535 parts) raises ``LargeZipFile``, as zipfile does for xlsxwriter unless the workbook allows
ZIP64 (then :class:`agents.reports.fast_xlsx.FastWorkbook` leaves the zipping to xlsxwriter).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable
from zipfile import ZIP_DEFLATED, LargeZipFile, ZipInfo

COMPRESS_LEVEL = 1
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # xlsxwriter's timestamp of in-memory parts (Excel's own)
DOS_TIME, DOS_DATE = 0, (ZIP_TIME[0] - 1980) << 9 | ZIP_TIME[1] << 5 | ZIP_TIME[2]
VERSION = 20  # deflate: what zipfile writes as "made by" and "needed to extract"
CREATE_SYSTEM = ZipInfo().create_system  # as zipfile: 3 (Unix), 0 on Windows
EXTERNAL_ATTR = 0o600 << 16  # zipfile's ?rw------- for an entry without attributes
UTF8_NAME = 0x800
ZIP64_LIMIT = (1 << 31) - 1  # as zipfile: larger sizes and offsets need ZIP64 records
MAX_ENTRIES = 0xFFFF
LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")
END_RECORD = struct.Struct("<4s4H2LH")


def deflate(data: bytes) -> bytes:
    """Raw deflate at ``COMPRESS_LEVEL``; the window (and the hash table with it) sized to the data (zlib reaches
    back a few hundred bytes less than its window, so a part just under a window's size may compress a little
    less well; its content is the same)."""
    window = min(max((len(data) - 1).bit_length(), 9), 15)
    compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -window, min(window - 6, 8))
    return compressor.compress(data) + compressor.flush()


def write_zip(path: str | os.PathLike[str], parts: Iterable[tuple[str, bytes]]) -> None:
    """The archive of ``parts`` (name, content), each deflated, in their order. Raises ``LargeZipFile`` (as
    ``zipfile`` does without ``allowZip64``) for an archive that would need ZIP64 records."""
    central: list[bytes] = []
    offset = 0
    with open(path, "wb") as file:
        for name, data in parts:
            encoded, flags = _encoded_name(name)
            packed = deflate(data)
            if len(data) * 1.05 > ZIP64_LIMIT or offset > ZIP64_LIMIT or len(central) == MAX_ENTRIES:
                raise LargeZipFile("the workbook would need ZIP64 extensions")
            fields = (flags, ZIP_DEFLATED, DOS_TIME, DOS_DATE, zlib.crc32(data), len(packed), len(data), len(encoded))
            file.write(LOCAL_HEADER.pack(b"PK\x03\x04", VERSION, 0, *fields, 0) + encoded)
            file.write(packed)
            central.append(
                CENTRAL_HEADER.pack(
                    b"PK\x01\x02", VERSION, CREATE_SYSTEM, VERSION, 0, *fields, 0, 0, 0, 0, EXTERNAL_ATTR, offset
                )
                + encoded
            )
            offset += LOCAL_HEADER.size + len(encoded) + len(packed)
        directory = b"".join(central)
        if offset + len(directory) > ZIP64_LIMIT:
            raise LargeZipFile("the workbook would need ZIP64 extensions")
        file.write(directory)
        file.write(END_RECORD.pack(b"PK\x05\x06", 0, 0, len(central), len(central), len(directory), offset, 0))


def _encoded_name(name: str) -> tuple[bytes, int]:
    """The name's bytes and flags, as zipfile encodes them: ASCII, else UTF-8 with the flag saying so."""
    try:
        return name.encode("ascii"), 0
    except UnicodeEncodeError:
        return name.encode("utf-8"), UTF8_NAME
