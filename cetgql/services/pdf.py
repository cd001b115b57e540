"""PDF rendering for admission tickets, score reports and certificates (T5, R5, R8).

What every printed document of the system shares lives here, once:

- **Fonts.** Chinese text needs a CJK font embedded in the PDF: a ticket must print the same on
  any printer, with or without fonts of its own. The fonts are Debian's (``scripts/bootstrap``
  installs them) and are named in ``@font-face`` rules by ``file://`` URL, so WeasyPrint embeds
  them and HarfBuzz subsets them to the glyphs used. The fallback chain is
  ``Noto Sans CJK SC`` (fonts-noto-cjk: everyday Chinese, Latin, digits) → ``DejaVu Sans``
  (fonts-dejavu-core: accented Latin, Greek, Cyrillic of foreign names) → ``HanaMinB``
  (fonts-hanazono: CJK Extension B–F, the rare characters of names such as 𠀀 or 𪚥, which
  Noto Sans CJK lacks). Pango picks, character by character, the first font of the chain that
  has a glyph. A font that is not installed is left out of the chain (and logged).
- **Refusing to print boxes.** :func:`check_glyphs` names every character no font of the chain
  can draw and raises ``MISSING_GLYPH``; :func:`render_pdf` runs it over the document's text
  before rendering, so a name with a character we cannot print fails loudly at once instead of
  coming out as an empty box on a candidate's ticket.
- **Off the event loop.** WeasyPrint is pure Python around Pango and holds the GIL most of the
  time (a ticket takes 0.1–0.2 s of CPU here): run in a thread it would stall every other
  request of the process meanwhile. Rendering therefore runs in a small pool of worker
  *processes* (spawned, never forked from a process with open database connections and
  threads), each keeping its own font configuration and compiled base stylesheet between
  documents, so the fonts are loaded once per worker and not once per document. See
  docs/tickets.md for the measurements behind this choice. A program that renders must guard
  its entry point with ``if __name__ == "__main__":``, as spawned workers import it again.
- **No network, no file system.** Documents may reference only ``data:`` URIs (photos, images)
  and the font files above; anything else fails the rendering, so text that reached a template
  can never make the renderer fetch a URL or read a local file.

How another service uses it::

    from cetgql.services import pdf

    body = f"<h1>{html.escape(title)}</h1><div class='qr'>{pdf.qr_svg(url)}</div>"
    document = pdf.html_document(body, title="成绩报告单", css=REPORT_CSS)
    content = await pdf.render_pdf(document)           # MISSING_GLYPH if it cannot be printed

    await pdf.load_fonts()                 # once, before checking text yourself in async code
    pdf.check_glyphs(name, "name")         # MISSING_GLYPH at input field "name"

    content = await pdf.render_pdf_pages([body1, body2, ...], title=..., css=...)  # a batch

Every document must be Chinese (``lang="zh-CN"``, which :func:`html_document` sets): the CJK
font file is a collection of regional faces, and the language is what makes fontconfig pick
the simplified-Chinese one.
"""

from __future__ import annotations

import asyncio
import base64
import html as html_module
import logging
import multiprocessing
import os
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cetgql.services.errors import DomainError, ErrorCode

if TYPE_CHECKING:
    from weasyprint import CSS, Document
    from weasyprint.text.fonts import FontConfiguration

logger = logging.getLogger("cetgql.pdf")

ProgressCallback = Callable[[int, int], None]


# --- fonts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FontFace:
    """One font of the fallback chain, as a ``@font-face`` rule names it."""

    family: str  # the CSS family name the documents use
    path: Path
    package: str  # the Debian package that installs it
    face_name: str | None = None  # in a collection (.ttc): the face whose glyphs count
    weight: str = "normal"

    @property
    def url(self) -> str:
        return self.path.as_uri()


NOTO = Path("/usr/share/fonts/opentype/noto")
FONT_CHAIN: tuple[FontFace, ...] = (
    FontFace("CET Sans", NOTO / "NotoSansCJK-Regular.ttc", "fonts-noto-cjk", "Noto Sans CJK SC"),
    FontFace(
        "CET Sans", NOTO / "NotoSansCJK-Bold.ttc", "fonts-noto-cjk", "Noto Sans CJK SC Bold", "bold"
    ),
    FontFace(
        "CET Latin", Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"), "fonts-dejavu-core"
    ),
    FontFace("CET Rare", Path("/usr/share/fonts/truetype/hanazono/HanaMinB.ttf"), "fonts-hanazono"),
)
FAMILIES = ('"CET Sans"', '"CET Latin"', '"CET Rare"')


@lru_cache(maxsize=1)
def installed_fonts() -> tuple[FontFace, ...]:
    """The fonts of the chain present on this machine; a missing one is logged once."""
    present = []
    for face in FONT_CHAIN:
        if face.path.is_file():
            present.append(face)
        else:
            logger.warning("font %s missing (Debian package %s)", face.path, face.package)
    return tuple(present)


def _face_cmap(face: FontFace) -> set[int]:
    from fontTools.ttLib import TTCollection, TTFont

    if face.path.suffix.lower() == ".ttc":
        collection = TTCollection(str(face.path), lazy=True)
        try:
            for font in collection.fonts:
                if font["name"].getDebugName(4) == face.face_name:
                    return set(font.getBestCmap())
            return set(collection.fonts[0].getBestCmap())
        finally:
            collection.close()
    font = TTFont(str(face.path), lazy=True)
    try:
        return set(font.getBestCmap())
    finally:
        font.close()


@lru_cache(maxsize=1)
def coverage() -> frozenset[int]:
    """Every code point some font of the chain has a glyph for (read once, about a second).

    Only regular faces count: a bold face covers the same characters as its regular one."""
    covered: set[int] = set()
    for face in installed_fonts():
        if face.weight == "normal":
            covered |= _face_cmap(face)
    return frozenset(covered)


async def load_fonts() -> None:
    """Read the fonts' character maps in a thread, once. Async code calls this before the
    first :func:`check_glyphs` or :func:`missing_glyphs`, which would otherwise block the event
    loop for about a second while they read the fonts. Once read, no thread is used: every
    view of a ticket (the candidate's overview included) calls this."""
    global _fonts_loading
    if coverage.cache_info().currsize:
        return
    if _fonts_loading is None:
        _fonts_loading = asyncio.Lock()
    # One reader: the requests arriving meanwhile (a restart under load) wait for it instead
    # of each reading the fonts again in a thread of its own.
    async with _fonts_loading:
        if not coverage.cache_info().currsize:
            await asyncio.to_thread(coverage)


_fonts_loading: asyncio.Lock | None = None


def _needs_no_glyph(char: str) -> bool:
    """Whitespace, controls, format characters (ZWJ) and variation selectors draw nothing of
    their own."""
    code = ord(char)
    return (
        char.isspace()
        or unicodedata.category(char) in {"Cc", "Cf"}
        or 0xFE00 <= code <= 0xFE0F
        or 0xE0100 <= code <= 0xE01EF
    )


def missing_glyphs(text: str) -> list[str]:
    """The distinct characters of ``text`` no font of the chain can draw, in order of
    appearance."""
    covered = coverage()
    missing: dict[str, None] = {}
    for char in text:
        if ord(char) not in covered and not _needs_no_glyph(char):
            missing[char] = None
    return list(missing)


def describe(chars: Iterable[str]) -> str:
    """``𠀀 (U+20000), 〇 (U+3007)``: the character and its code point, since the character
    alone may itself show as a box on the admin's screen."""
    return ", ".join(f"{c} (U+{ord(c):04X})" for c in chars)


def check_glyphs(text: str, *field: str) -> None:
    """Raise ``MISSING_GLYPH`` (at ``field``, if given) naming the characters of ``text`` that
    no font of the chain can draw."""
    missing = missing_glyphs(text)
    if missing:
        raise DomainError.of(ErrorCode.MISSING_GLYPH, *field, detail=describe(missing))


class _TextCollector(HTMLParser):
    """The text a document prints: every text node outside ``<style>``, ``<script>`` and
    ``<title>`` (which goes into the PDF's metadata, not onto the page)."""

    _SILENT = frozenset({"style", "script", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._silent = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SILENT:
            self._silent += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SILENT and self._silent:
            self._silent -= 1

    def handle_data(self, data: str) -> None:
        if not self._silent:
            self.parts.append(data)


def printed_text(html: str) -> str:
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    return "".join(collector.parts)


# --- documents -----------------------------------------------------------------------------


def base_css() -> str:
    """A4 pages and the font chain; every document is rendered with it."""
    faces = "\n".join(
        f'@font-face {{ font-family: "{f.family}"; font-weight: {f.weight}; src: url("{f.url}"); }}'
        for f in installed_fonts()
    )
    return f"""{faces}
@page {{ size: A4; margin: 14mm 16mm; }}
html {{ font-family: {", ".join(FAMILIES)}; font-size: 10.5pt; line-height: 1.45; color: #000; }}
body {{ margin: 0; }}
.page {{ break-after: page; }}
.page:last-child {{ break-after: auto; }}
"""


def html_document(body: str, *, title: str, css: str = "") -> str:
    """A complete Chinese HTML document around ``body`` (trusted HTML: escape data with
    ``html.escape`` before putting it in), with the document's own ``css``."""
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{html_module.escape(title)}</title><style>{css}</style></head>"
        f"<body>{body}</body></html>"
    )


def data_uri(content: bytes, content_type: str) -> str:
    """Inline an image (a photo, a seal) into the document."""
    return f"data:{content_type};base64,{base64.b64encode(content).decode('ascii')}"


def qr_svg(data: str, *, size_mm: float = 28, error: str = "m") -> str:
    """A QR code of ``data`` as inline SVG, ``size_mm`` wide with its quiet zone."""
    import segno

    code = segno.make(data, error=error, micro=False)
    modules = code.symbol_size(scale=1)[0]  # with the quiet zone
    svg: str = code.svg_inline(scale=size_mm / modules, unit="mm", dark="#000")
    return svg


# --- rendering, in a worker ----------------------------------------------------------------


def _fetcher_class() -> type:
    from weasyprint.urls import URLFetcher

    class LocalOnly(URLFetcher):  # type: ignore[misc]
        """``data:`` URIs and the chain's font files; everything else fails the document."""

        def __init__(self) -> None:
            super().__init__(allowed_protocols=("data", "file"), fail_on_errors=True)
            self._fonts = {face.url for face in installed_fonts()}

        def fetch(self, url: str, headers: Any = None) -> Any:
            if url.startswith("file:") and url not in self._fonts:
                raise ValueError(f"not an allowed resource: {url[:80]}")
            return super().fetch(url, headers)

    return LocalOnly


class _Renderer:
    """What one worker keeps between documents: the font configuration (WeasyPrint copies
    each ``@font-face`` file into a temporary folder per configuration, 70 MB here) and the
    base stylesheet compiled against it."""

    def __init__(self) -> None:
        from weasyprint import CSS
        from weasyprint.text.fonts import FontConfiguration

        self.fetcher = _fetcher_class()()
        self.font_config: FontConfiguration = FontConfiguration()
        self.base: CSS = CSS(
            string=base_css(), font_config=self.font_config, url_fetcher=self.fetcher
        )

    def document(self, html: str) -> Document:
        from weasyprint import HTML

        return HTML(string=html, url_fetcher=self.fetcher).render(
            stylesheets=[self.base], font_config=self.font_config
        )

    def pdf(self, html: str) -> bytes:
        return self.document(html).write_pdf() or b""

    def pages(self, documents: Sequence[str], progress: ProgressCallback | None) -> bytes:
        rendered = []
        for done, html in enumerate(documents, start=1):
            rendered.append(self.document(html))
            if progress is not None:
                progress(done, len(documents))
        pages = [page for document in rendered for page in document.pages]
        return rendered[0].copy(pages).write_pdf() or b""


_local = threading.local()


def _renderer() -> _Renderer:
    """This thread's renderer (each worker process has one thread that renders)."""
    renderer: _Renderer | None = getattr(_local, "renderer", None)
    if renderer is None:
        renderer = _local.renderer = _Renderer()
    return renderer


class RenderError(RuntimeError):
    """A document that cannot be rendered: it references a resource it may not (see the
    module notes), or WeasyPrint failed on it."""


def _guarded(render: Callable[[], bytes]) -> bytes:
    """WeasyPrint stops on a forbidden resource with an exception derived from
    ``BaseException``, which would tear through ``except Exception`` handlers (and asyncio)
    on its way up: turn it into an ordinary error here."""
    from weasyprint.urls import FatalURLFetchingError

    try:
        return render()
    except FatalURLFetchingError as error:
        raise RenderError(str(error)) from None


def _render_one(html: str) -> bytes:
    return _guarded(lambda: _renderer().pdf(html))


def _render_many(documents: Sequence[str]) -> bytes:
    return _guarded(lambda: _renderer().pages(documents, None))


def _warm_up() -> None:
    """Load WeasyPrint and the fonts as the worker starts, not during its first document."""
    _renderer().pdf(html_document("<p>准考证 Ticket 0123456789</p>", title="warm-up"))


# --- the pool --------------------------------------------------------------------------------

_pool: Executor | None = None
_pool_lock = threading.Lock()


def pool_size() -> int:
    """One worker per core, at most 4: rendering is CPU-bound, and each worker holds about
    160 MB (WeasyPrint, Pango and the fonts)."""
    return max(1, min(4, os.cpu_count() or 1))


def _executor() -> Executor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                max_workers=pool_size(),
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_warm_up,
            )
        return _pool


def shutdown() -> None:
    """Stop the worker processes (at exit they are stopped anyway)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


async def _in_pool(function: Callable[..., bytes], *args: Any) -> bytes:
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(_executor(), function, *args)
    except BrokenProcessPool:
        # A worker died (killed for memory, say): start a fresh pool and try once more.
        logger.warning("PDF worker pool broke; restarting it")
        shutdown()
        return await loop.run_in_executor(_executor(), function, *args)


async def _check(html_texts: Iterable[str]) -> None:
    await load_fonts()
    missing: dict[str, None] = {}
    for html in html_texts:
        for char in missing_glyphs(printed_text(html)):
            missing[char] = None
    if missing:
        raise DomainError.of(ErrorCode.MISSING_GLYPH, detail=describe(missing))


async def render_pdf(html: str) -> bytes:
    """The PDF of a complete HTML document (see :func:`html_document`), rendered in a worker
    process. ``MISSING_GLYPH`` when its text has a character no font can draw."""
    await _check([html])
    return await _in_pool(_render_one, html)


BATCH_CHUNK = 100  # pages per HTML document of a batch: one layout pass, shared styles


def _chunks(bodies: Sequence[str], title: str, css: str) -> list[str]:
    return [
        html_document(
            "".join(f'<section class="page">{b}</section>' for b in bodies[i : i + BATCH_CHUNK]),
            title=title,
            css=css,
        )
        for i in range(0, len(bodies), BATCH_CHUNK)
    ]


async def render_pdf_pages(
    bodies: Sequence[str],
    *,
    title: str,
    css: str = "",
    progress: ProgressCallback | None = None,
) -> bytes:
    """One PDF of many pages: each of ``bodies`` starts a new page. Pages are laid out
    :data:`BATCH_CHUNK` to a document, which costs a fraction of rendering them one by one,
    and the fonts are embedded once for the whole file.

    Without ``progress`` the work runs in the worker pool. With it (the command line), it runs
    in a thread of this process so that ``progress(pages_done, pages)`` can report each chunk;
    the callback is then called from that thread.
    """
    if not bodies:
        raise ValueError("a batch needs at least one page")
    documents = _chunks(bodies, title, css)
    await _check(bodies)
    if progress is None:
        return await _in_pool(_render_many, documents)
    report = progress

    def pages_done(documents_done: int, _: int) -> None:
        report(min(documents_done * BATCH_CHUNK, len(bodies)), len(bodies))

    return await asyncio.to_thread(_guarded, lambda: _renderer().pages(documents, pages_done))
