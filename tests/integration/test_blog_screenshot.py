"""Screenshots of the blog by headless Chromium (Debian's chromium): the
home page, a post, the tag tree and a tag page each render to a picture
that is not blank: mostly page background and white, the dark header band
across the top, the white content card, and text (many colours from
anti-aliasing). The PNGs are decoded here with the standard library."""

import os
import shutil
import struct
import subprocess
import tempfile
import zlib

import sxtest

BLOG = os.path.normpath(os.path.join(sxtest.HERE, "..", "..", "examples", "blog"))
WIDTH, HEIGHT = 1200, 1000
HEADER = (0x1D, 0x3B, 0x53)  # header.site background in main.sx's CSS
PAGE = (0xF6, 0xF4, 0xEF)    # body background


def read_png(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB/RGBA PNG."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, ihdr
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


def near(c, want, tol=6):
    return all(abs(a - b) <= tol for a, b in zip(c, want))


class Screenshots(sxtest.unittest.TestCase):
    def test_pages_render_to_pictures_that_are_not_blank(self):
        chromium = shutil.which("chromium")
        self.assertIsNotNone(chromium, "chromium is not installed (deploy/install-deps.sh)")
        tmp = tempfile.mkdtemp(prefix="sxpool-shot-")
        self.addCleanup(shutil.rmtree, tmp, True)
        with sxtest.Server(app=BLOG, workers=1) as srv:
            slug = __import__("json").loads(srv.get("/api/posts").text)["posts"][0]["slug"]
            for name, path in [("home", "/"), ("post", "/posts/" + slug), ("tags", "/tags"),
                               ("tag", "/tags/logic")]:
                png = os.path.join(tmp, name + ".png")
                p = subprocess.run(
                    [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                     "--user-data-dir=" + os.path.join(tmp, "profile"),
                     "--window-size=%d,%d" % (WIDTH, HEIGHT), "--screenshot=" + png,
                     "http://%s:%d%s" % (srv.host, srv.port, path)],
                    stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
                self.assertEqual(p.returncode, 0, (name, p.stderr[-2000:]))
                w, h, rows = read_png(png)
                self.assertEqual((w, h), (WIDTH, HEIGHT), name)
                # the header band across the top, the page background at the sides
                self.assertTrue(near(rows[10][5], HEADER) and near(rows[10][w - 5], HEADER),
                                (name, rows[10][5]))
                self.assertTrue(near(rows[h // 2][5], PAGE), (name, rows[h // 2][5]))
                # the content card is white, and holds text: dark and coloured
                # pixels in many shades
                card = [c for row in rows[120:h - 20:2] for c in row[w // 2 - 300:w // 2 + 300:2]]
                white = sum(1 for c in card if near(c, (255, 255, 255), 2))
                inked = sum(1 for c in card if sum(c) < 600)
                colours = len(set(card))
                self.assertGreater(white / len(card), 0.5, name)
                self.assertGreater(inked / len(card), 0.01, (name, inked, len(card)))
                self.assertGreater(colours, 50, name)


if __name__ == "__main__":
    sxtest.main()
