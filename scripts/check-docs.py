#!/usr/bin/env python3
"""Checks that every relative link and image of the documentation points to something that exists.

The pages checked: README.md, docs/*.md, policies/README.md and synapse-module/README.md. For each inline link or
image (`[text](target)`, `![alt](target)`) and each reference definition (`[label]: target`) outside code, a target
that is not a URL (`https:`, `mailto:`, ...) must name an existing file or directory, relative to the page; a
`#anchor` (alone, for the page itself, or after a Markdown file) must be a heading of that page, with the anchor
GitHub gives it: the heading's text lowercased, every character that is not a letter, a mark, a digit, `-`, `_` (or
another connector) or a space dropped (accented letters stay), spaces turned to `-`, and `-1`, `-2`, ... added to repeated headings.

Prints each broken link as `FILE:LINE: link -> reason` and exits 1 if there is any; exits 0 otherwise. Python 3
standard library only; run from anywhere (`python3 scripts/check-docs.py`).
"""

import re
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["README.md", "docs/*.md", "policies/README.md", "synapse-module/README.md", "deploy/*/README.md",
         "policies/tests/files/README.md", "tests/fixtures/media/README.md"]

FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")  # indented too: fences inside list items
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*(?:[ \t]#+[ \t]*)?$")
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
# An inline link or image: [text](target "title"), the text possibly holding one level of brackets.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_ANCHOR = re.compile(r"<a\s[^>]*\b(?:name|id)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def strip_code_spans(line):
    """The line with the content of its code spans blanked, so that links shown as code are not checked."""
    out, i = [], 0
    while i < len(line):
        if line[i] == "`":
            run = len(line[i:]) - len(line[i:].lstrip("`"))
            end = line.find("`" * run, i + run)
            while end != -1 and end + run < len(line) and line[end + run] == "`":
                end = line.find("`" * run, end + run + 1)
            if end == -1:
                out.append(line[i : i + run])
                i += run
                continue
            out.append(" " * (end + run - i))
            i = end + run
        else:
            out.append(line[i])
            i += 1
    return "".join(out)


def heading_text(markdown):
    """The text GitHub shows for a heading's Markdown: code spans kept as their content, links as their text."""
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("`", "")
    text = re.sub(r"(\*+|(?<!\w)_+|_+(?!\w))", "", text)  # emphasis markers, not underscores inside words
    return text.strip()


def slug(text):
    """GitHub's anchor for a heading's text."""
    kept = []
    for ch in text.lower():
        category = unicodedata.category(ch)
        if ch in " -" or category[0] in "LMN" or category == "Pc":  # github-slugger: [^\p{L}\p{M}\p{N}\p{Pc} -]
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


def lines_outside_code(text):
    """(line number, line) of every line outside fenced code blocks, code spans blanked."""
    fence = None
    for number, line in enumerate(text.split("\n"), start=1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            continue
        if fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
            continue
        yield number, line


def anchors_of(path, cache={}):
    """Every anchor a Markdown file offers: its headings' (GitHub-style, repeats numbered) and HTML `name`/`id`s."""
    if path in cache:
        return cache[path]
    anchors, seen = set(), {}
    previous = None
    for _, line in lines_outside_code(path.read_text(encoding="utf-8")):
        texts = []
        match = ATX_HEADING.match(line)
        if match:
            texts.append(match.group(2))
        elif previous and previous.strip() and SETEXT_UNDERLINE.match(line) and not previous.lstrip().startswith(("|", "-", "*")):
            texts.append(previous.strip())
        for text in texts:
            base = slug(heading_text(text))
            count = seen.get(base, 0)
            anchors.add(base if count == 0 else f"{base}-{count}")
            seen[base] = count + 1
        for name in HTML_ANCHOR.findall(line):
            anchors.add(name)
        previous = line
    cache[path] = anchors
    return anchors


def targets_of(page):
    """(line number, target) of every link and image of a page, outside code."""
    for number, line in lines_outside_code(page.read_text(encoding="utf-8")):
        line = strip_code_spans(line)
        for match in INLINE_LINK.finditer(line):
            yield number, match.group(1)
        match = REFERENCE_DEFINITION.match(line)
        if match:
            yield number, match.group(1)


def problem(page, target):
    """Why a link target is broken, or None."""
    if target.startswith("<") and target.endswith(">"):
        target = target[1:-1]
    if URL_SCHEME.match(target) or target.startswith("//"):
        return None
    path_part, _, anchor = target.partition("#")
    path_part = unquote(path_part.split("?", 1)[0])
    if path_part:
        resolved = (page.parent / path_part).resolve()
        if not resolved.exists():
            return f"no such file: {path_part}"
        try:
            resolved.relative_to(ROOT)
        except ValueError:
            return f"outside the repository: {path_part}"
    else:
        resolved = page
    if anchor:
        if resolved.is_dir() or resolved.suffix.lower() not in (".md", ".markdown"):
            return f"an anchor on a file that is not Markdown: #{anchor}"
        if unquote(anchor) not in anchors_of(resolved):
            return f"no heading with the anchor #{anchor} in {resolved.relative_to(ROOT)}"
    return None


def main():
    pages = sorted({path for pattern in PAGES for path in ROOT.glob(pattern)})
    broken = 0
    for page in pages:
        for number, target in targets_of(page):
            reason = problem(page, target)
            if reason:
                broken += 1
                print(f"{page.relative_to(ROOT)}:{number}: {target} -> {reason}")
    if broken:
        print(f"{broken} broken link(s) in {len(pages)} pages", file=sys.stderr)
        return 1
    print(f"every relative link of {len(pages)} pages resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
