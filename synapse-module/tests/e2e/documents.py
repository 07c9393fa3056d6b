"""Real documents for the upload scenarios, made at test time by the producers people use (reportlab, python-docx,
openpyxl, odfpy, zipfile), each with the marking in one place a reader must look, or without it. Each function returns
the file's bytes."""

from __future__ import annotations

import io
import zipfile

MARK = "DIFFUSION RESTREINTE"
BODY = "Compte rendu du comité de pilotage du 12 mars. Les points suivants ont été abordés en séance plénière."


def pdf(marked: bool, pages: int = 3) -> bytes:
    """A report stamped `DIFFUSION RESTREINTE` at the top of every page (reportlab, compressed content streams)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4, pageCompression=1)
    page.setTitle("Rapport")
    for number in range(1, pages + 1):
        if marked:
            page.setFont("Helvetica-Bold", 14)
            page.drawCentredString(297, 810, MARK)
        page.setFont("Helvetica", 11)
        for line in range(30):
            page.drawString(60, 760 - 18 * line, f"{BODY[:70]} ({number}.{line + 1})")
        page.showPage()
    page.save()
    return out.getvalue()


def docx(marked: bool) -> bytes:
    """A note whose marking is only in its section header (python-docx): the body says nothing."""
    import docx as python_docx

    document = python_docx.Document()
    document.sections[0].header.paragraphs[0].text = MARK if marked else "Ministère - Direction des affaires"
    document.add_heading("Note au ministre", level=1)
    for _ in range(15):
        document.add_paragraph(BODY)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def odt(marked: bool) -> bytes:
    """A text document whose marking is only in its page header: the master page in styles.xml (odfpy)."""
    from odf.opendocument import OpenDocumentText
    from odf.style import Header, MasterPage, PageLayout
    from odf.text import P

    document = OpenDocumentText()
    layout = PageLayout(name="Mise en page")
    document.automaticstyles.addElement(layout)
    master = MasterPage(name="Standard", pagelayoutname=layout)
    header = Header()
    header.addElement(P(text=MARK if marked else "Direction des affaires"))
    master.addElement(header)
    document.masterstyles.addElement(master)
    for _ in range(10):
        document.text.addElement(P(text=BODY))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def xlsx(marked: bool) -> bytes:
    """A workbook whose first sheet is an ordinary budget and whose second sheet holds the marking (openpyxl)."""
    import openpyxl

    book = openpyxl.Workbook()
    budget = book.active
    budget.title = "Budget"
    budget.append(["Poste", "Montant"])
    for row in range(1, 25):
        budget.append([f"Ligne {row}", row * 1250])
    annex = book.create_sheet("Annexe")
    annex["A1"] = "Annexe"
    annex["C9"] = MARK if marked else "Annexe publique"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def pptx(marked: bool) -> bytes:
    """A presentation whose second slide carries the marking in its text (python-pptx)."""
    from pptx import Presentation

    deck = Presentation()
    title = deck.slides.add_slide(deck.slide_layouts[0])
    title.shapes.title.text = "Point d'étape"
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Calendrier"
    slide.placeholders[1].text = f"{BODY}\n{MARK}" if marked else BODY
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def zipped(name: str, content: bytes) -> bytes:
    """A zip archive holding one file, deflated."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    return out.getvalue()


def zip_bomb(uncompressed: int = 1 << 30) -> bytes:
    """One entry of `uncompressed` zero bytes (1 GiB by default), deflated to about a thousandth of that."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("zeros.txt", "w", force_zip64=True) as entry:
            block = bytes(1 << 20)
            for _ in range(uncompressed >> 20):
                entry.write(block)
    return out.getvalue()
