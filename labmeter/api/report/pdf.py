"""The printable A4 PDF, drawn directly with fpdf2 from the same tables, charts and texts as
the HTML.

A region's yearly report holds about 8,000 table cells. WeasyPrint, which rendered the HTML,
spent 12-17 s of CPU on them (CSS cascade, automatic table layout, collapsed borders, a Pango
layout per cell); placing each cell as one PDF text line costs about 0.05 ms
(``bench/report.py``, docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fpdf import FPDF

from labmeter.api.report import charts
from labmeter.api.report.model import Report
from labmeter.api.report.tables import TEXT, Table, cell, tables
from labmeter.api.report.texts import Lang, conclusions, method, pct, period_line, t

# Debian's fonts-dejavu-core: Unicode (à, è, €) in a font every PDF reader shows alike.
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT = "DejaVu"
BLUE = (31, 95, 168)
HEAD_FILL = (238, 243, 250)
RULE = (204, 204, 204)
SIZE = 8.5  # table and body text, pt
MIN_SIZE = 6.5  # the smallest table text, for tables too wide for the page
LINE = 4.4  # a table line, mm
PAD = 1.2  # cell padding left and right, mm
PT = 0.3528  # mm per point


class _Pdf(FPDF):
    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(FONT, size=7.5)
        self.cell(0, 4, f"{self.page_no()} / {{nb}}", align="R")


def document(title: str, version: str) -> FPDF:
    """An A4 document with the report's fonts, margins and page numbers (no page yet)."""
    if not (FONT_DIR / "DejaVuSans.ttf").exists():
        raise RuntimeError(f"no DejaVu fonts in {FONT_DIR}: install Debian's fonts-dejavu-core")
    pdf = _Pdf(format="A4")
    pdf.set_title(title)
    pdf.set_creator(f"labmeter {version}")
    pdf.set_margins(14, 16, 14)
    pdf.set_auto_page_break(True, 16)
    pdf.c_margin = 0  # cells are padded here (PAD), so that widths measure what they hold
    pdf.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    return pdf


def title(pdf: FPDF, text: str) -> None:
    pdf.set_font(FONT, "B", 18)
    pdf.cell(0, 10, text, new_x="LMARGIN", new_y="NEXT")


def to_pdf(report: Report, lang: Lang) -> bytes:
    """Sections 1-9 in the HTML's order: headings, tables, charts, methodology, conclusions."""
    pdf = document(t("title", lang), report["meta"]["labmeter"])
    pdf.add_page()
    title(pdf, t("title", lang))
    _paragraph(pdf, period_line(report, lang))
    by_section: dict[str, list[Table]] = {}
    for table in tables(report, lang):
        by_section.setdefault(table.section, []).append(table)
    chart = charts.report_charts(report, lang)
    for n in range(1, 9):
        key = f"s{n}"
        _h2(pdf, t(key, lang))
        for i, table in enumerate(by_section.get(key, [])):
            if i > 0:
                _h3(pdf, table.title)
            _table(pdf, table, lang)
        if key == "s1":
            _paragraph(pdf, f"* {t('pnrr_note', lang)}", size=7.5)
        elif key in ("s4", "s5", "s6"):
            _chart(pdf, chart[{"s4": "trend", "s5": "categories", "s6": "openness"}[key]])
        elif key == "s8":
            _h3(pdf, t("definitions", lang))
            _bullets(pdf, method(report, lang), lang)
            _paragraph(pdf, f"{t('coverage', lang)}: {pct(report['evidence']['coverage'], lang)}")
    _h2(pdf, t("s9", lang))
    for heading, items in conclusions(report, lang):
        _h3(pdf, heading)
        _bullets(pdf, items, lang)
    _signature(pdf, lang)
    return bytes(pdf.output())


def _signature(pdf: FPDF, lang: Lang) -> None:
    """The lab manager's block: name, date and signature, by hand on the printed report."""
    if pdf.will_page_break(45):
        pdf.add_page()
    pdf.ln(10)
    pdf.set_font(FONT, "B", SIZE + 1)
    pdf.cell(0, 7, t("manager_signature", lang), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", SIZE)
    for key in ("sign_name", "sign_date", "sign_here"):
        pdf.ln(6)
        pdf.cell(35, 6, t(key, lang))
        y = pdf.get_y() + 5
        pdf.line(pdf.l_margin + 35, y, pdf.l_margin + 120, y)
        pdf.ln(6)


def _h2(pdf: FPDF, text: str) -> None:
    if pdf.will_page_break(20):  # a heading never ends a page alone
        pdf.add_page()
    pdf.ln(4)
    pdf.set_font(FONT, "B", 13)
    pdf.set_text_color(*BLUE)
    pdf.cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(*BLUE)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    pdf.set_text_color(0)
    pdf.ln(2)


def _h3(pdf: FPDF, text: str) -> None:
    if pdf.will_page_break(16):
        pdf.add_page()
    pdf.ln(1)
    pdf.set_font(FONT, "B", 10.5)
    pdf.cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")


def _paragraph(pdf: FPDF, text: str, size: float = SIZE) -> None:
    pdf.set_font(FONT, size=size)
    pdf.multi_cell(0, size * PT * 1.35, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1.5)


def _bullets(pdf: FPDF, items: list[str], lang: Lang) -> None:
    if not items:
        _paragraph(pdf, t("none", lang))
        return
    pdf.set_font(FONT, size=SIZE)
    for item in items:
        pdf.set_x(pdf.l_margin + 2)
        pdf.cell(4, LINE, "•")
        pdf.multi_cell(0, LINE, item, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1.5)


def _fit(
    pdf: FPDF, table: Table, texts: list[list[str]], measured: list[list[float]]
) -> tuple[float, list[float]]:
    """The font size and column widths: each column as wide as its widest cell, fitted to the
    page; text columns give up width first (their cells wrap between words), headers wrap
    between words, numbers never wrap; a table too wide even so gets a smaller font.
    ``measured`` holds the cells' widths at ``SIZE`` (widths scale with the font size)."""
    pdf.set_font(FONT, "B", SIZE)
    header = [max(pdf.get_string_width(w) for w in h.split()) for h, _ in table.columns]
    pdf.set_font(FONT, size=SIZE)
    widest = [max((row[i] for row in measured), default=0.0) for i in range(len(header))]
    word = [
        max(
            (pdf.get_string_width(w) for w in {w for row in texts for w in row[i].split()}),
            default=0.0,
        )
        if unit == TEXT  # an asset id stays whole
        else widest[i]
        for i, (_, unit) in enumerate(table.columns)
    ]
    size = SIZE
    while True:
        k = size / SIZE
        natural = [max(h, c) * k + 2 * PAD + 0.1 for h, c in zip(header, widest, strict=True)]
        minimum = [max(h, w) * k + 2 * PAD + 0.1 for h, w in zip(header, word, strict=True)]
        if sum(minimum) <= pdf.epw or size <= MIN_SIZE:
            break
        size = max(MIN_SIZE, size - 0.5)
    excess, slack = sum(natural) - pdf.epw, sum(natural) - sum(minimum)
    if excess <= 0:  # spread the spare width, as the HTML's full-width tables do
        return size, [w * pdf.epw / sum(natural) for w in natural]
    if slack >= excess:
        return size, [n - (n - m) * excess / slack for n, m in zip(natural, minimum, strict=True)]
    return size, [m * pdf.epw / sum(minimum) for m in minimum]


def _table(pdf: FPDF, table: Table, lang: Lang) -> None:
    """Rows of single-line cells with a rule under each; the header again on each page."""
    texts = [
        [cell(v, u, lang) for v, (_, u) in zip(row, table.columns, strict=True)]
        for row in table.rows
    ]
    pdf.set_font(FONT, size=SIZE)
    known: dict[str, float] = {}  # a table repeats its labs, kinds, funds and n/d
    measured = [
        [known[text] if text in known else known.setdefault(text, pdf.get_string_width(text))
         for text in row]
        for row in texts
    ]  # fmt: skip
    size, widths = _fit(pdf, table, texts, measured)
    k, line = size / SIZE, size * LINE / SIZE

    def width_of(text: str) -> float:  # at the table's size, measured once at SIZE
        found = known.get(text)
        if found is None:
            found = known[text] = pdf.get_string_width(text) * SIZE / pdf.font_size_pt
        return found * k

    aligns = ["L" if unit == TEXT else "R" for _, unit in table.columns]
    pdf.set_draw_color(*RULE)
    head = _head_lines(pdf, table, widths, size)
    pdf.set_font(FONT, size=size)
    _header(pdf, head, widths, size)
    if not texts:
        pdf.cell(0, line, t("none", lang), border="B", new_x="LMARGIN", new_y="NEXT")
    for row, row_widths in zip(texts, measured, strict=True):
        lines = [
            _wrap(text, w - 2 * PAD, width_of) if tw * k > w - 2 * PAD else [text]
            for text, tw, w in zip(row, row_widths, widths, strict=True)
        ]
        height = line * max(len(ls) for ls in lines)
        if pdf.will_page_break(height):
            pdf.add_page()
            _header(pdf, head, widths, size)
        _cells(pdf, lines, widths, aligns, line, width_of)
    pdf.ln(3)


def _cells(
    pdf: FPDF,
    lines: list[list[str]],
    widths: list[float],
    aligns: list[str],
    line: float,
    width_of: Callable[[str], float],
) -> None:
    """One row: each cell's lines, then a rule across the table under the tallest. Text goes
    down with ``text()`` at the baseline ``cell()`` would use: ``cell()`` costs several times
    as much, and a region's report has ~8,000 cells."""
    x, y = pdf.l_margin, pdf.get_y()
    height = line * max(len(ls) for ls in lines)
    baseline = 0.5 * line + 0.3 * pdf.font_size
    for cell_lines, w, align in zip(lines, widths, aligns, strict=True):
        for k, text in enumerate(cell_lines):
            left = x + w - PAD - width_of(text) if align == "R" else x + PAD
            pdf.text(left, y + k * line + baseline, text)
        x += w
    pdf.line(pdf.l_margin, y + height, pdf.l_margin + pdf.epw, y + height)
    pdf.set_xy(pdf.l_margin, y + height)


def _wrap(text: str, width: float, width_of: Callable[[str], float]) -> list[str]:
    """``text`` broken between words into lines of at most ``width`` (a word wider than that
    keeps a line of its own: ``_fit`` makes text columns as wide as their widest word).
    Greedy, with each word measured once: fpdf's ``multi_cell`` measured every character of
    every cell again, a third of a region's PDF."""
    space = width_of(" ")
    lines: list[str] = []
    current: list[str] = []
    used = 0.0
    for word in text.split():
        w = width_of(word)
        if current and used + space + w > width:
            lines.append(" ".join(current))
            current, used = [], 0.0
        used += (space if current else 0.0) + w
        current.append(word)
    return [*lines, " ".join(current)] if current else [text]


def _head_lines(pdf: FPDF, table: Table, widths: list[float], size: float) -> list[list[str]]:
    """The header's cells broken into lines, once per table (every page repeats them)."""
    pdf.set_font(FONT, "B", size)
    bold: dict[str, float] = {}

    def width_of(text: str) -> float:
        found = bold.get(text)
        if found is None:
            found = bold[text] = pdf.get_string_width(text)
        return found

    return [
        _wrap(h, w - 2 * PAD, width_of) for (h, _), w in zip(table.columns, widths, strict=True)
    ]


def _header(pdf: FPDF, lines: list[list[str]], widths: list[float], size: float) -> None:
    line = size * LINE / SIZE
    height = line * max(len(ls) for ls in lines)
    if pdf.will_page_break(height + 2 * line):  # the header keeps at least two rows with it
        pdf.add_page()
    pdf.set_font(FONT, "B", size)
    pdf.set_fill_color(*HEAD_FILL)
    pdf.rect(pdf.l_margin, pdf.get_y(), pdf.epw, height, style="F")
    _cells(pdf, lines, widths, ["L"] * len(widths), line, pdf.get_string_width)
    pdf.set_font(FONT, size=size)


def _chart(pdf: FPDF, chart: charts.Chart) -> None:
    """The chart's shapes scaled to the text width, as PDF vector operators."""
    scale = pdf.epw / chart.width
    height = chart.height * scale
    if pdf.will_page_break(height):
        pdf.add_page()
    x0, y0 = pdf.l_margin, pdf.get_y() + 2
    pdf.set_draw_color(221, 221, 221)
    pdf.set_line_width(0.2)
    for x1, x2, y in chart.grid:
        pdf.line(x0 + x1 * scale, y0 + y * scale, x0 + x2 * scale, y0 + y * scale)
    for r in chart.rects:
        pdf.set_fill_color(*_rgb(r.color))
        pdf.rect(x0 + r.x * scale, y0 + r.y * scale, r.w * scale, r.h * scale, style="F")
    for text in chart.texts:
        size = text.size * scale / PT
        pdf.set_font(FONT, "B" if text.bold else "", size)
        x = x0 + text.x * scale
        if text.anchor != "start":
            width = pdf.get_string_width(text.text)
            x -= width if text.anchor == "end" else width / 2
        pdf.text(x, y0 + text.y * scale, text.text)
    pdf.set_y(y0 + height + 2)


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
