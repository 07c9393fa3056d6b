"""Real documents made by real producers (reportlab, python-docx, openpyxl, python-pptx, odfpy, zipfile), marked or
clean, for the upload tests. Each function returns the file's bytes."""

import io
import zipfile

MARK = "DIFFUSION RESTREINTE"
BODY = "Compte rendu de la réunion du comité de pilotage. Les points suivants ont été abordés en séance."


def pdf(marked: bool, pages: int = 3) -> bytes:
    """A report with a banner at the top of every page (reportlab, compressed streams)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, pageCompression=1)
    c.setTitle("Rapport")
    for page in range(pages):
        if marked:
            c.setFont("Helvetica-Bold", 14)
            c.drawCentredString(297, 810, MARK)
        c.setFont("Helvetica", 11)
        for line in range(40):
            c.drawString(60, 760 - 16 * line, f"{BODY[:80]} ({page + 1}.{line + 1})")
        c.showPage()
    c.save()
    return out.getvalue()


def docx(marked: bool) -> bytes:
    """A letter whose marking is only in the page header (python-docx)."""
    import docx as python_docx

    document = python_docx.Document()
    if marked:
        document.sections[0].header.paragraphs[0].text = MARK
    document.add_heading("Note", level=1)
    for _ in range(20):
        document.add_paragraph(BODY)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def xlsx(marked: bool) -> bytes:
    """A workbook whose marking is only in its second sheet (openpyxl)."""
    import openpyxl

    book = openpyxl.Workbook()
    first = book.active
    first.title = "Budget"
    for row in range(1, 30):
        first.append([f"Ligne {row}", row * 100])
    second = book.create_sheet("Annexe")
    second["B7"] = MARK if marked else "Annexe publique"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def pptx(marked: bool) -> bytes:
    """A presentation with the marking in a slide's text (python-pptx)."""
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Point d'étape"
    slide.placeholders[1].text = MARK if marked else BODY
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def odt(marked: bool) -> bytes:
    """A text document whose marking is only in its page header, which lives in styles.xml (odfpy)."""
    from odf.opendocument import OpenDocumentText
    from odf.style import Header, MasterPage, PageLayout
    from odf.text import P

    document = OpenDocumentText()
    layout = PageLayout(name="Page")
    document.automaticstyles.addElement(layout)
    master = MasterPage(name="Standard", pagelayoutname=layout)
    header = Header()
    header.addElement(P(text=MARK if marked else "En-tête"))
    master.addElement(header)
    document.masterstyles.addElement(master)
    for _ in range(10):
        document.text.addElement(P(text=BODY))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zipped(name: str, content: bytes) -> bytes:
    """A zip archive holding one file."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    return out.getvalue()


def zip_bomb(uncompressed: int = 1 << 30) -> bytes:
    """One entry of `uncompressed` zero bytes, deflated to about a thousandth of that."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("zeros.txt", "w", force_zip64=True) as entry:
            block = bytes(1 << 20)
            for _ in range(uncompressed >> 20):
                entry.write(block)
    return out.getvalue()
