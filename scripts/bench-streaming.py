#!/usr/bin/env python3
"""The streaming upload path's benchmark (issue #22, items 2 and 3): how soon a marked file is denied while it is
still arriving, and how much memory the server holds while reading large clean files.

    CARGO_TARGET_DIR=/work/main/target cargo build --release --locked --bin roomguard
    .venv/bin/python scripts/bench-streaming.py --binary /work/main/target/release/roomguard [--rounds 5]

(`--binary` defaults to `$CARGO_TARGET_DIR/release/roomguard`, else `target/release/roomguard`.) The script starts
roomguard itself on loopback (`serve --listen 127.0.0.1:<free port> --decision-log off`, the shipped policies) and
streams every file to it with grpcio in 64 KiB chunks, as fast as grpc takes them. The files are made in memory
by real producers, seeded, so every run sends the same bytes:

- **text**: UTF-8 lines of French words;
- **docx**: a python-docx document (default template), then a stored part of random bytes
  (`word/media/pad.bin`) appended after every part python-docx wrote, `word/document.xml` included: the bulk of
  the file comes after its text, as with a report whose pictures follow the first page;
- **pdf**: reportlab, a first page of text, then a page drawing one random-pixel image (Flate, not ASCII85)
  sized so that the file reaches its size: the image stream comes after the first page's content.

Phase 1, **time to the deny**: files of 1 MB, 10 MB and 50 MB (decimal) whose first line is `DIFFUSION
RESTREINTE`, the server on its defaults. Per upload: the time from the first message handed to grpc to the answer
(client side), the server's `bytes_read`, and the bytes the request iterator had handed to grpc when the answer
came. Rounds alternate formats and sizes; the figures are medians over rounds.

Phase 2, **peak memory**: `media.max_concurrent_scans` (4) uploads of the same 50 MB clean file at once (no
marking: nothing ends the reading early), for each format, on a server started fresh for every round; its idle
VmRSS is read before the uploads and its VmHWM (peak resident set) after. Once with the default
`media.max_scan_memory_bytes` (64 MiB), once with 16 MiB. For this phase the server gets `--media-timeout-ms 60000`
and `--media-max-text-chars 1000000000`, so that no scan ends on its time budget or text limit before it has held
all it may hold: the worst case the setting is meant to bound.

To see what one scan holds, run the memory phase alone with one upload at a time (`--phase memory --concurrent 1`);
with `MALLOC_MMAP_THRESHOLD_=131072` in the environment (the server inherits it) glibc returns every large buffer
to the system when it is freed, which separates what the reader holds from what the allocator keeps.
Results and their reading: docs/uploads-benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import grpc

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests/proxies"))
sys.path.insert(0, str(REPO / "scripts"))

import harness  # noqa: E402

CHUNK = 64 * 1024
MARK = "DIFFUSION RESTREINTE"
MB = 1_000_000
MIB = 1 << 20
SIZES = (1 * MB, 10 * MB, 50 * MB)
FORMATS = ("text", "docx", "pdf")
CONCURRENT_SCANS = 4  # media.max_concurrent_scans, default
MEDIA_IDS = (f"upload{n}" for n in itertools.count())
WORDS = ("le la les de des du un une et en pour dans sur avec par au réunion comité rapport mission budget programme "
         "direction service projet note sécurité système réseau opération analyse décision").split()


def stubs():
    """The gRPC stubs, generated from proto/ into a temporary folder (as bench-uploads.py does)."""
    import grpc_tools
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="roomguard-stubs-")
    include = str(Path(grpc_tools.__file__).parent / "_proto")
    protoc.main(["protoc", f"-I{REPO / 'proto'}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}",
                 str(REPO / "proto/roomguard/v1/policy.proto")])
    sys.path.insert(0, out)
    from roomguard.v1 import policy_pb2, policy_pb2_grpc

    return policy_pb2, policy_pb2_grpc


# === the files ===


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def text_file(size: int, marked: bool) -> bytes:
    rng = random.Random(7)
    first = MARK if marked else "Compte rendu de la réunion de service"
    block = "".join(words(rng, 12) + "\n" for _ in range(2000)).encode()
    out = bytearray(f"{first}\n".encode())
    while len(out) < size:
        out += block
    del out[size:]
    out[-1:] = b"\n"
    return bytes(out)


def docx_file(size: int, marked: bool) -> bytes:
    import docx

    rng = random.Random(7)
    document = docx.Document()
    document.add_paragraph(MARK if marked else "Compte rendu de la réunion de service")
    for _ in range(20):
        document.add_paragraph(words(rng, 40))
    written = io.BytesIO()
    document.save(written)
    # Rewritten part by part in python-docx's own order, with the padding last; its content type declared, as a
    # producer would for a picture.
    out = io.BytesIO()
    with zipfile.ZipFile(written) as source, zipfile.ZipFile(out, "w") as package:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "[Content_Types].xml":
                data = data.replace(b"<Default ", b'<Default Extension="bin" ContentType="image/png"/><Default ', 1)
            package.writestr(info, data, compress_type=info.compress_type)
        name = "word/media/pad.bin"
        directory = sum(46 + len(i.filename.encode()) for i in package.infolist()) + 46 + len(name) + 22
        pad = max(0, size - out.tell() - (30 + len(name)) - directory)
        package.writestr("word/media/pad.bin", random.Random(11).randbytes(pad), compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def pdf_file(size: int, marked: bool) -> bytes:
    from PIL import Image
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    rng = random.Random(7)
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, pageCompression=1)
    c.setFont("Helvetica-Bold", 12)
    c.drawCentredString(297, 815, MARK if marked else "Compte rendu de la réunion de service")
    c.setFont("Helvetica", 8)
    for line in range(60):
        c.drawString(30, 790 - 11 * line, words(rng, 22))
    c.showPage()
    # One random-pixel picture filling the rest of the size (random pixels do not compress), drawn inline: reportlab
    # writes every page's content stream after all image XObjects, so an XObject would put the first page's text at
    # the end of the file; an inline image is in page 2's content stream, written after page 1's. Page compression
    # ASCII85-encodes that stream: the file is about 1.29 times the pixels.
    pixels = max(1, int((size - 8_000) / 1.2925) // 3)
    width = 2048
    height = max(1, pixels // width)
    image = Image.frombytes("RGB", (width, height), random.Random(11).randbytes(width * height * 3))
    c.drawInlineImage(image, 30, 30, width=535, height=780)
    c.showPage()
    c.save()
    return out.getvalue()


MAKERS = {"text": text_file, "docx": docx_file, "pdf": pdf_file}


def where(data: bytes, needle: bytes) -> int:
    at = data.find(needle)
    return at if at >= 0 else -1


def marking_ends_at(data: bytes, fmt: str) -> int:
    """The byte of the file after which everything needed to see the marking has arrived (for the docx, the end of
    `word/document.xml`; for the PDF, the end of the content stream that draws it)."""
    if fmt == "text":
        return data.index(MARK.encode()) + len(MARK)
    if fmt == "docx":
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            info = package.getinfo("word/document.xml")
            # The local header's name and extra field lengths (they may differ from the central directory's).
            lengths = data[info.header_offset + 26 : info.header_offset + 30]
            name_len, extra_len = int.from_bytes(lengths[:2], "little"), int.from_bytes(lengths[2:], "little")
            return info.header_offset + 30 + name_len + extra_len + info.compress_size
    import base64
    import re
    import zlib

    for match in re.finditer(rb"/Length (\d+)\s*>>\s*stream\r?\n", data):
        start, length = match.end(), int(match.group(1))
        raw = data[start : start + length]
        try:
            text = zlib.decompressobj().decompress(base64.a85decode(raw, adobe=True))
        except (ValueError, zlib.error):
            continue
        if MARK.encode() in text:
            return start + length
    raise AssertionError("no content stream draws the marking")


# === the server ===


class Server:
    """One roomguard on loopback, with the shipped policies and no decision log."""

    def __init__(self, binary: Path, work: Path, flags: list[str]):
        self.port = harness.free_port()
        self.log = work / f"roomguard-{self.port}.log"
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--listen", f"127.0.0.1:{self.port}", "--policies", str(REPO / "policies"),
             "--decision-log", "off", *flags],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "wb"),
        )
        harness.wait_for_port(self.port, self.proc, self.log, timeout=60)
        self.address = f"127.0.0.1:{self.port}"

    def kib(self, field: str) -> int:
        """A `/proc/<pid>/status` figure in KiB (VmRSS: resident now; VmHWM: the peak resident set)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def stop(self) -> None:
        harness.stop_process(self.proc)


# === the uploads ===


class Upload:
    """One CheckMediaUpload call: the answer, the time from the first message to it, the bytes handed to grpc."""

    def __init__(self, pb, stub, data: bytes, filename: str, timeout: float):
        self.sent = 0
        self.started = 0.0
        self.error: grpc.RpcError | None = None
        self.response = None

        def messages():
            self.started = time.perf_counter()
            yield pb.CheckMediaUploadRequest(header=pb.MediaUploadHeader(
                media=pb.Media(media_id=f"mxc://bench/{next(MEDIA_IDS)}", filename=filename, size=len(data))))
            for at in range(0, len(data), CHUNK):
                chunk = data[at : at + CHUNK]
                self.sent += len(chunk)
                yield pb.CheckMediaUploadRequest(chunk=chunk)

        try:
            self.response = stub.CheckMediaUpload(messages(), timeout=timeout)
        except grpc.RpcError as err:
            self.error = err
        self.elapsed = time.perf_counter() - self.started
        # Read now: the iterator may be asked for one more message while the call winds down.
        self.sent_when_answered = self.sent


def channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 1 << 20)])


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def time_to_deny(pb, pb_grpc, binary: Path, work: Path, rounds: int) -> None:
    """Phase 1 (see the module documentation)."""
    files = {}
    for fmt in FORMATS:
        for size in SIZES:
            print(f"making the marked {fmt} of {size:,} bytes", file=sys.stderr)
            data = MAKERS[fmt](size, True)
            files[fmt, size] = data, marking_ends_at(data, fmt)
            assert files[fmt, size][1] < 64 * 1024, (fmt, size, files[fmt, size][1])
    server = Server(binary, work, [])
    try:
        stub = pb_grpc.PolicyServiceStub(channel(server.address))
        Upload(pb, stub, files["text", SIZES[0]][0], "warmup.txt", 30)  # connection and first-call costs
        runs: dict[tuple[str, int], list[Upload]] = {key: [] for key in files}
        keys = list(files)
        for round_ in range(rounds):
            # Rotated each round, so that the machine's drift falls on every file alike.
            shift = round_ * 2 % len(keys)
            for fmt, size in keys[shift:] + keys[:shift]:
                call = Upload(pb, stub, files[fmt, size][0], f"compte-rendu.{fmt if fmt != 'text' else 'txt'}", 30)
                if call.error is not None:
                    sys.exit(f"{fmt} {size}: {call.error.code()} {call.error.details()}")
                runs[fmt, size].append(call)
            print(f"round {round_ + 1}/{rounds}: " + ", ".join(
                f"{fmt} {size // MB} MB {ms(runs[fmt, size][-1].elapsed)}" for fmt, size in keys), file=sys.stderr)
    finally:
        server.stop()

    print(f"\n## Time to the deny: marking in the first 64 KiB, 64 KiB chunks, server defaults ({rounds} rounds, "
          "medians)\n")
    print("| format | file bytes | marking ends at byte | time to the answer | (min - max) | bytes_read | "
          "bytes sent when answered | answer |")
    print("|---|---|---|---|---|---|---|---|")
    for fmt, size in keys:
        calls = runs[fmt, size]
        last = calls[-1].response
        effects = {pb.Effect.Name(c.response.decision.effect) for c in calls}
        reasons = {c.response.scan.incomplete_reason or "complete" for c in calls}
        answer = f"{'/'.join(sorted(effects))} {last.decision.classification}, {last.scan.format}, " + "/".join(
            sorted(reasons))
        times = [c.elapsed for c in calls]
        print(f"| {fmt} | {len(files[fmt, size][0]):,} | {files[fmt, size][1]:,} | {ms(statistics.median(times))} | "
              f"({ms(min(times))} - {ms(max(times))}) | "
              f"{statistics.median(c.response.scan.bytes_read for c in calls):,.0f} | "
              f"{statistics.median(c.sent_when_answered for c in calls):,.0f} | {answer} |")
    print("\n| format | 50 MB / 1 MB, time | 10 MB / 1 MB, time |")
    print("|---|---|---|")
    for fmt in FORMATS:
        small = statistics.median(c.elapsed for c in runs[fmt, SIZES[0]])
        print(f"| {fmt} | {statistics.median(c.elapsed for c in runs[fmt, SIZES[2]]) / small:.2f}x | "
              f"{statistics.median(c.elapsed for c in runs[fmt, SIZES[1]]) / small:.2f}x |")


def peak_memory(pb, pb_grpc, binary: Path, work: Path, rounds: int, concurrent: int) -> None:
    """Phase 2 (see the module documentation)."""
    size = SIZES[-1]
    files = {}
    for fmt in FORMATS:
        print(f"making the clean {fmt} of {size:,} bytes", file=sys.stderr)
        files[fmt] = MAKERS[fmt](size, False)
    rows = []
    for memory in (64 * MIB, 16 * MIB):
        flags = ["--media-timeout-ms", "60000", "--media-max-text-chars", "1000000000",
                 "--media-max-scan-memory-bytes", str(memory)]
        for fmt in FORMATS:
            idle, idle_peak, peaks, calls = [], [], [], []
            for round_ in range(rounds):
                server = Server(binary, work, flags)
                try:
                    time.sleep(1)
                    idle.append(server.kib("VmRSS"))
                    idle_peak.append(server.kib("VmHWM"))
                    channels = [channel(server.address) for _ in range(concurrent)]
                    done: list[Upload] = []
                    start = threading.Barrier(concurrent)

                    def send(ch, index):
                        start.wait()
                        stub = pb_grpc.PolicyServiceStub(ch)
                        done.append(Upload(pb, stub, files[fmt], f"compte-rendu-{index}.{fmt}", 120))

                    threads = [threading.Thread(target=send, args=(ch, i)) for i, ch in enumerate(channels)]
                    for thread in threads:
                        thread.start()
                    for thread in threads:
                        thread.join()
                    peaks.append(server.kib("VmHWM"))
                    for ch in channels:
                        ch.close()
                finally:
                    server.stop()
                failed = [c.error for c in done if c.error is not None]
                if failed:
                    sys.exit(f"{fmt}, {memory} bytes: {failed[0].code()} {failed[0].details()}")
                calls.extend(done)
                print(f"max_scan_memory {memory // MIB} MiB, {fmt}, round {round_ + 1}/{rounds}: idle {mib(idle[-1])}, "
                      f"peak {mib(peaks[-1])}, " + ", ".join(
                          f"{c.response.scan.bytes_read:,} read {c.response.scan.incomplete_reason or 'complete'} "
                          f"in {ms(c.elapsed)}" for c in done), file=sys.stderr)
            rows.append((memory, fmt, idle, idle_peak, peaks, calls))

    print(f"\n## Peak memory: {concurrent} clean files of {size:,} bytes at once, a fresh server each round "
          f"({rounds} rounds, medians)\n")
    print("| max_scan_memory_bytes | format | idle RSS | peak RSS (VmHWM) | (max) | peak - idle | bound: "
          f"{concurrent} x setting | (peak - idle) / bound | bytes_read | how the reading ended | "
          "time of an upload |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for memory, fmt, idle, idle_peak, peaks, calls in rows:
        bound = concurrent * memory / 1024
        grown = statistics.median(p - i for p, i in zip(peaks, idle))
        reasons = sorted({c.response.scan.incomplete_reason or "complete" for c in calls})
        print(f"| {memory // MIB} MiB | {fmt} ({len(files[fmt]):,} bytes) | {mib(statistics.median(idle))} | "
              f"{mib(statistics.median(peaks))} | {mib(max(peaks))} | {mib(grown)} | {mib(bound)} | "
              f"{grown / bound:.2f} | {statistics.median(c.response.scan.bytes_read for c in calls):,.0f} | "
              f"{'/'.join(reasons)} | {ms(statistics.median(c.elapsed for c in calls))} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    parser.add_argument("--binary", type=Path, default=target / "release/roomguard")
    parser.add_argument("--phase", choices=("all", "deny", "memory"), default="all")
    parser.add_argument("--concurrent", type=int, default=CONCURRENT_SCANS,
                        help="uploads at once in the memory phase (at most media.max_concurrent_scans, 4)")
    args = parser.parse_args()
    if not args.binary.exists():
        sys.exit(f"{args.binary} is missing: cargo build --release --locked --bin roomguard")

    pb, pb_grpc = stubs()
    work = Path(tempfile.mkdtemp(prefix="roomguard-bench-streaming-"))
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    if not 1 <= args.concurrent <= CONCURRENT_SCANS:
        sys.exit(f"--concurrent: 1 to {CONCURRENT_SCANS} (more would wait for a scan slot, not add to memory)")
    print(f"# bench-streaming: {time.strftime('%Y-%m-%d %H:%M')}, commit {commit}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}, binary {args.binary}")
    if args.phase in ("all", "deny"):
        time_to_deny(pb, pb_grpc, args.binary, work, args.rounds)
    if args.phase in ("all", "memory"):
        peak_memory(pb, pb_grpc, args.binary, work, args.rounds, args.concurrent)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}; server logs in {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
