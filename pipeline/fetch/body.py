"""Decompress a response body under a hard size cap (gzip-bomb safe).

The fetcher reads the raw bytes (urllib3 ``decode_content=False``) and feeds them
to :class:`BoundedDecoder`, which inflates with ``zlib.decompressobj`` and
``max_length`` so that no more than ``max_bytes + 1`` decompressed bytes are ever
produced in memory (in 256 KiB slices, so the peak is about the cap plus one
slice). Exceeding the cap raises :class:`TooLargeError`.
"""

from __future__ import annotations

import zlib

from ..errors import FetchError, TooLargeError

__all__ = ["BoundedDecoder", "SUPPORTED_ENCODINGS"]

SUPPORTED_ENCODINGS = ("gzip", "x-gzip", "deflate", "identity", "")
_SLICE = 256 * 1024  # decompressed bytes produced per zlib call


class BoundedDecoder:
    """Accumulates the decoded body of one response.

    ``encoding`` is the Content-Encoding header value (lower-case). Only a single
    gzip/deflate layer (or none) is supported; anything else is a FetchError with
    reason ``unsupported_encoding``.
    """

    def __init__(self, encoding: str, max_bytes: int, *, url: str = "") -> None:
        enc = encoding.strip().lower()
        if enc not in SUPPORTED_ENCODINGS:
            raise FetchError(f"unsupported Content-Encoding {encoding!r}: {url}", url=url,
                             reason="unsupported_encoding")
        self.encoding = "gzip" if enc == "x-gzip" else enc
        self.max_bytes = max_bytes
        self.url = url
        self.raw_bytes = 0
        self._chunks: list[bytes] = []
        self._size = 0
        self._zlib: zlib._Decompress | None = None  # type: ignore[name-defined]
        self._deflate_probe = b""  # first bytes of a deflate body, to tell zlib from raw deflate
        if self.encoding == "gzip":
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def _append(self, data: bytes) -> None:
        if not data:
            return
        self._size += len(data)
        if self._size > self.max_bytes:
            raise TooLargeError(f"body larger than {self.max_bytes} bytes (decompressed): {self.url}", url=self.url)
        self._chunks.append(data)

    def _room(self) -> int:
        """Output allowed from one decompress call: up to one byte past the cap, in slices."""
        return min(self.max_bytes - self._size + 1, _SLICE)

    def _inflate(self, data: bytes) -> None:
        assert self._zlib is not None
        try:
            self._append(self._zlib.decompress(data, self._room()))
            while self._zlib.unconsumed_tail:
                self._append(self._zlib.decompress(self._zlib.unconsumed_tail, self._room()))
        except zlib.error as exc:
            raise FetchError(f"corrupt {self.encoding} body: {exc}: {self.url}", url=self.url,
                             reason="decode_error") from None

    def feed(self, raw: bytes) -> None:
        """Add raw (possibly compressed) bytes; raises TooLargeError past the cap."""
        self.raw_bytes += len(raw)
        if self.raw_bytes > self.max_bytes:
            raise TooLargeError(f"body larger than {self.max_bytes} bytes: {self.url}", url=self.url)
        if self.encoding in ("identity", ""):
            self._append(raw)
            return
        if self._zlib is None:  # deflate: zlib-wrapped (RFC) or raw (common in practice)?
            self._deflate_probe += raw
            if len(self._deflate_probe) < 2:
                return
            head = self._deflate_probe
            self._deflate_probe = b""
            zlib_wrapped = (head[0] & 0x0F) == 8 and ((head[0] << 8) | head[1]) % 31 == 0
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
            raw = head
        self._inflate(raw)

    def finish(self) -> bytes:
        """The whole decoded body (flushes the decompressor)."""
        if self._deflate_probe:
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            self._inflate(self._deflate_probe)
            self._deflate_probe = b""
        if self._zlib is not None:
            try:
                self._append(self._zlib.flush(self.max_bytes - self._size + 1))
            except zlib.error as exc:
                raise FetchError(f"corrupt {self.encoding} body: {exc}: {self.url}", url=self.url,
                                 reason="decode_error") from None
        return b"".join(self._chunks)
