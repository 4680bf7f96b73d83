"""report.html: self-contained, escaped, complete, and it renders (headless Chromium)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from bundle_fixtures import real_run

from controlcheck.evidence.bundle import bundle_bytes_map
from controlcheck.reporters import FORMATS
from controlcheck.reporters.html import render


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return real_run(tmp_path_factory.mktemp("html"))


class _Refs(HTMLParser):
    """Every URL-bearing attribute, by tag."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "action", "poster", "background"):
                self.refs.append((tag, name, value or ""))


@pytest.mark.parametrize("in_bundle", [False, True])
def test_no_external_resources(run: Any, in_bundle: bool) -> None:
    page = render(run, in_bundle=in_bundle)
    parser = _Refs()
    parser.feed(page)
    for tag, _name, value in parser.refs:
        assert not re.match(r"^\s*(https?:)?//", value, re.I), (tag, value)
        assert not value.lower().startswith(("javascript:", "data:text/html"))
    # Nothing that fetches: no external scripts, stylesheets, images, frames, fonts.
    assert not parser.tags & {"script", "link", "img", "iframe", "object", "embed", "source"}
    assert "url(" not in page and "@import" not in page
    assert "default-src 'none'" in page  # CSP: even a mistake could not fetch anything
    assert FORMATS["html"] == "controlcheck.reporters.html"


def test_content_an_auditor_needs(run: Any) -> None:
    page = render(run)
    assert "Servers worden regelmatig geüpdatet." in page  # Dutch promise quoted
    assert "Servers are updated regularly." in page
    for cid in ("PATCH-90", "FW-90", "PHYS-90", "TLS-90", "ACCESS-90", "BACKUP-90"):
        assert f'id="c-{cid}"' in page
    for heading in ("Per family", "Per framework", "ISO/IEC 27001:2022 Annex A",
                    "NIST SP 800-53 Rev. 5", "Needs attention"):
        assert heading in page
    for status in ("pass", "fail", "error", "skip", "manual", "waived"):
        assert f'id="f-{status}"' in page  # a filter per status
        assert f'#f-{status}:not(:checked) ~ main .st-{status}' in page
    assert "file arrives with the Q3 migration" in page  # the waiver is shown
    used = {e for r in run.results for e in r.evidence}
    for ev_id in used:
        ev = run.evidence.get(ev_id)
        assert ev.sha256 in page  # full hash next to each inline evidence item
    assert run.id in page and run.inventory.digest in page
    # clause numbers in reading order, not string order
    iso = page[page.index("ISO/IEC 27001:2022 Annex A</h3>"):]
    positions = [iso.index(f"<td>{ref}</td>") for ref in ("A.7.2", "A.8.8", "A.8.13", "A.8.20")]
    assert positions == sorted(positions)


def test_markup_in_messages_and_evidence_is_escaped(run: Any) -> None:
    page = render(run)
    assert "&lt;b&gt;now&lt;/b&gt; &amp; retry" in page
    assert "<b>now</b>" not in page
    # evidence text is escaped too: the sh -c command line contains '>&2'
    assert "&gt;&amp;2" in page


def test_bundle_html_links_the_evidence_files(run: Any) -> None:
    files = bundle_bytes_map(run)
    page = files["report.html"].decode()
    links = set(re.findall(r'href="(evidence/[^"]+)"', page))
    assert links and links == {n for n in files if n.startswith("evidence/")}
    assert 'href="evidence/' not in render(run)  # standalone report has no dangling links


def test_render_is_deterministic(run: Any) -> None:
    assert render(run) == render(run)


# ---- headless Chromium --------------------------------------------------------------------


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) into rows."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ftype == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif ftype == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif ftype == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line) if bpp == 3 else bytes(
            v for i, v in enumerate(line) if i % 4 != 3))
        prev = line
    return width, height, rows


def _screenshot(page: Path, png: Path, size: str) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "Debian package 'chromium' is required for this test"
    # --no-sandbox: Chromium refuses to run as root with its sandbox; the page is ours.
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions", "--disable-background-networking",
         f"--screenshot={png}", f"--window-size={size}", page.as_uri()],
        capture_output=True, timeout=90)
    assert png.is_file(), proc.stderr.decode(errors="replace")[-2000:]


def test_screenshot_renders_a_readable_page(run: Any, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(run), encoding="utf-8")
    png = tmp_path / "report.png"
    _screenshot(page, png, "900,700")
    width, height, rows = _png_pixels(png.read_bytes())
    assert (width, height) == (900, 700)
    pixels = [row[i:i + 3] for row in rows[::2] for i in range(0, len(row), 6)]
    white = sum(p == b"\xff\xff\xff" for p in pixels)
    assert len(set(pixels)) > 50  # text is antialiased: a blank page has one or two colours
    assert 0.02 < 1 - white / len(pixels) < 0.9

    def near(rgb: tuple[int, int, int]) -> int:
        return sum(all(abs(p[k] - rgb[k]) <= 12 for k in range(3)) for p in pixels)

    # The status badges drew in their colours: fail red, pass green (header area).
    assert near((0xCF, 0x22, 0x2E)) > 20
    assert near((0x1A, 0x7F, 0x37)) > 20
