#!/usr/bin/env python3
"""Whole-upload timing: documents made by real producers (a text-heavy reportlab PDF of 2,600 pages, a 100-page
python-docx document), streamed to a running roomguard in 64 KiB chunks by grpcio, 5 rounds each, median printed.

    cargo build --release && ./target/release/roomguard serve --decision-log off &
    .venv/bin/python scripts/bench-uploads.py 127.0.0.1:50051

Start the server with `--media-max-text-chars 100000000` to read the PDF to its end instead of stopping at the default
10 M characters. Peak memory: `grep VmHWM /proc/$(pgrep -f 'roomguard serve')/status` afterwards.
"""

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_tools import protoc

REPO = Path(__file__).resolve().parents[1]
WORDS = ("le la les de des du un une et en pour dans sur avec par au réunion comité rapport mission budget programme "
         "direction service projet note sécurité système réseau opération analyse décision").split()


def stubs():
    import grpc_tools

    out = tempfile.mkdtemp(prefix="roomguard-stubs-")
    include = str(Path(grpc_tools.__file__).parent / "_proto")
    protoc.main(["protoc", f"-I{REPO / 'proto'}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}",
                 str(REPO / "proto/roomguard/v1/policy.proto")])
    sys.path.insert(0, out)
    from roomguard.v1 import policy_pb2, policy_pb2_grpc

    return policy_pb2, policy_pb2_grpc


def words(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def text_heavy_pdf(pages=2600):
    import io

    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    rng = random.Random(7)
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, pageCompression=1)
    for page in range(pages):
        c.setFont("Helvetica-Bold", 12)
        c.drawCentredString(297, 815, "DIFFUSION RESTREINTE" if page == 0 else "Rapport")
        c.setFont("Helvetica", 8)
        for line in range(95):
            c.drawString(30, 800 - 8.3 * line, words(rng, 22))
        c.showPage()
    c.save()
    return out.getvalue()


def hundred_page_docx():
    import io

    import docx

    rng = random.Random(7)
    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = "DIFFUSION RESTREINTE"
    for _ in range(100):
        for _ in range(12):
            document.add_paragraph(words(rng, 40))
        document.add_page_break()
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def main():
    pb, pb_grpc = stubs()
    stub = pb_grpc.PolicyServiceStub(grpc.insecure_channel(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"))

    def upload(data):
        yield pb.CheckMediaUploadRequest(header=pb.MediaUploadHeader(media=pb.Media(size=len(data))))
        for at in range(0, len(data), 65536):
            yield pb.CheckMediaUploadRequest(chunk=data[at : at + 65536])

    for name, data in [("text-heavy PDF", text_heavy_pdf()), ("100-page docx", hundred_page_docx())]:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            response = stub.CheckMediaUpload(upload(data), timeout=60)
            times.append(time.perf_counter() - started)
        scan = response.scan
        print(f"{name}: {len(data)} bytes, {scan.format}, {scan.text_chars} characters, "
              f"complete={scan.complete} {scan.incomplete_reason}, median {statistics.median(times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
