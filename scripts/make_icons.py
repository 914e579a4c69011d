"""Writes the LocalGLM app icons (RGBA PNGs) into icons/. Pure standard library.

The icon is a rounded indigo square with a white ring: simple, and legible at 32 px.
Run: python3 scripts/make_icons.py
"""
import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "icons")


def png(size: int) -> bytes:
    rows = []
    r_corner = size * 0.22
    for y in range(size):
        row = bytearray([0])  # filter type 0
        for x in range(size):
            cx, cy = x + 0.5, y + 0.5
            # rounded-square mask
            dx = max(r_corner - cx, 0, cx - (size - r_corner))
            dy = max(r_corner - cy, 0, cy - (size - r_corner))
            inside = dx * dx + dy * dy <= r_corner * r_corner
            if not inside:
                row += bytes([0, 0, 0, 0])
                continue
            t = cy / size
            r, g, b = int(79 - 30 * t), int(70 - 20 * t), int(229 - 40 * t)
            d = math.hypot(cx - size / 2, cy - size / 2) / size
            if 0.20 <= d <= 0.30:
                r, g, b = 255, 255, 255
            row += bytes([r, g, b, 255])
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(png(size))
        print("wrote", name)
