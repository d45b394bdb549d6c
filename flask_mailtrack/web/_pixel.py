"""The open-tracking pixel."""

from __future__ import annotations

#: A 1x1 transparent GIF (43 bytes), the smallest image every mail client
#: renders.
TRACKING_PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

#: The MIME type of :data:`TRACKING_PIXEL`.
PIXEL_MIME_TYPE = "image/gif"
