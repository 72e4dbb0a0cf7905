"""Reading compressed inputs as plain byte streams, noticing damage instead of hiding it.

The compression comes from the file name, with Beam's suffixes (`.gz`, `.bz2`, `.deflate`,
`.zst`/`.zstd`, `.xz`/`.lzma`). Beam's own `CompressedFile` cannot be iterated or wrapped in a
text reader, and it ends a truncated stream silently, as if the file were complete; this reader
gives the readers an ordinary buffered binary stream, and raises `OSError` where the data is
damaged (corrupt, or cut before the compressed stream's end). Everything before the damage has
then already been read: the readers keep those records and report the file as unreadable.
Concatenated streams (`cat a.gz b.gz`) are read one after the other, as gzip and bzip2 tools do.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from typing import BinaryIO, Callable

import zstandard
from apache_beam.io.filesystem import CompressionTypes

_READ_SIZE = 1 << 14  # compressed bytes per decompression step; corrupt data loses its step's records

_DECOMPRESSORS: dict[str, Callable[[], object]] = {
    CompressionTypes.GZIP: lambda: zlib.decompressobj(zlib.MAX_WBITS | 16),
    CompressionTypes.DEFLATE: zlib.decompressobj,  # zlib-wrapped deflate, as Beam writes it
    CompressionTypes.BZIP2: bz2.BZ2Decompressor,
    CompressionTypes.LZMA: lzma.LZMADecompressor,
    CompressionTypes.ZSTD: lambda: zstandard.ZstdDecompressor().decompressobj(),
}
_DECOMPRESSION_ERRORS = (zlib.error, OSError, EOFError, lzma.LZMAError, zstandard.ZstdError)


def is_compressed(path: str) -> bool:
    """Whether the file name ends with a compression suffix Beam knows."""
    return CompressionTypes.detect_compression_type(path) != CompressionTypes.UNCOMPRESSED


class _DecompressingRaw(io.RawIOBase):
    """The decompressed bytes of `compressed`, one decompressor object per concatenated stream."""

    def __init__(self, compressed: BinaryIO, compression: str):
        self._compressed = compressed
        self._new_decompressor = _DECOMPRESSORS[compression]
        self._decompressor = self._new_decompressor()
        self._pending = b""  # decompressed bytes not yet handed out
        self._started = False  # whether the current stream got any input (an empty file is fine)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            if not self._fill():
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _fill(self) -> bool:
        """Decompresses the next chunk into `_pending`; False at a clean end of the data."""
        if self._decompressor.eof:
            rest = self._decompressor.unused_data
            if not rest:
                rest = self._compressed.read(_READ_SIZE)
                if not rest:
                    return False
            self._decompressor, self._started = self._new_decompressor(), False
        else:
            rest = self._compressed.read(_READ_SIZE)
            if not rest:
                if self._started:
                    raise OSError("the compressed data ends before its end marker (truncated file)")
                return False
        self._started = True
        try:
            self._pending = self._decompressor.decompress(rest)
        except _DECOMPRESSION_ERRORS as e:
            raise OSError(f"corrupt compressed data: {e}") from None
        return True

    def close(self) -> None:
        self._compressed.close()
        super().close()


def decompressed(stream: BinaryIO, path: str) -> BinaryIO:
    """`stream` (opened uncompressed) as a buffered stream of its decompressed bytes."""
    if not is_compressed(path):
        return stream
    compression = CompressionTypes.detect_compression_type(path)
    return io.BufferedReader(_DecompressingRaw(stream, compression), buffer_size=1 << 16)
