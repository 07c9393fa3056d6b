//! E-mail saved as a file (`.eml`, what Thunderbird's "Save as" and Outlook's download write): RFC 5322 headers and
//! a MIME body, parsed by `mail-parser` (encoded words, base64, quoted-printable, charsets through `encoding_rs`).
//!
//! What a reader of the message sees is read: the subject, the names and addresses of sender and recipients, the
//! labelling headers (`SIO-Label`, RFC 7444; `msip_labels`, the sensitivity label Outlook shows), every text part
//! (a text/html part as HTML), and each attachment as the upload it would be, under its file name, one level deeper
//! (a message attached to a message too). Other headers (routing, signatures: base64 that could pass for a banner)
//! are not read.
//!
//! `mail-parser` walks multiparts and attached messages without recursion, but keeps every header line and every
//! part as a structure of about a hundred bytes: a file of 50 MiB of four-byte header lines or boundaries would take
//! gigabytes. So the file is first cut after [`MAX_STRUCTURE_LINES`] lines that can make a header or a part (noted
//! `size_limit`); a real message has a few hundred. Not counted: a message/rfc822 part in base64 or
//! quoted-printable (which RFC 2046 forbids and no client writes), which `mail-parser` decodes and parses, three
//! levels deep at most.

use std::borrow::Cow;

use mail_parser::{
    Addr, Address, HeaderName, HeaderValue, Message, MessageParser, MimeHeaders, PartType,
};

use crate::reader::{Incomplete, Reader, Step};

/// How far into a file to look for its header block when sniffing (Outlook's `Received` chains run to kilobytes).
const HEADER_WINDOW: usize = 64 * 1024;

/// Lines that may each make a header or a part (a field name and a colon, or a boundary's `--`) parsed at most.
const MAX_STRUCTURE_LINES: usize = 100_000;

/// Header names that only mail carries, for sniffing: two of them before the first blank line make a message.
const MAIL_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "received",
    "return-path",
    "mime-version",
    "reply-to",
    "sender",
    "in-reply-to",
    "references",
    "delivered-to",
    "content-type",
    "content-transfer-encoding",
    "dkim-signature",
    "authentication-results",
    "user-agent",
    "x-mailer",
    "thread-topic",
    "thread-index",
    "x-mozilla-status",
    "x-ms-has-attach",
];

/// Whether `bytes` start like a message: header fields (folded lines allowed, an mbox `From ` line first allowed)
/// up to the first blank line, at least two of them names that only mail uses. Text whose first line happens to be
/// `Subject: ...` is still text.
pub(crate) fn looks_like(bytes: &[u8]) -> bool {
    let window = &bytes[..bytes.len().min(HEADER_WINDOW)];
    let window = window.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(window);
    let cut = window.len() < bytes.len();
    let mut lines = window.split(|&b| b == b'\n').peekable();
    if lines
        .peek()
        .is_some_and(|first| first.starts_with(b"From "))
    {
        lines.next();
    }
    let (mut known, mut fields) = (0, 0);
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // The window may end inside a line: judge only whole lines.
        if lines.peek().is_none() && cut {
            break;
        }
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if fields == 0 {
                return false;
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return false;
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| b.is_ascii_graphic()) {
            return false;
        }
        fields += 1;
        if MAIL_HEADERS
            .iter()
            .any(|h| h.as_bytes().eq_ignore_ascii_case(name))
        {
            known += 1;
        }
    }
    known >= 2
}

/// Reads a message: its headers, every text part, every attachment as an upload of its own.
pub(crate) fn read(reader: &mut Reader<'_>, bytes: &[u8]) -> Step {
    let kept = structure_cut(bytes);
    if kept < bytes.len() {
        reader.note(Incomplete::SizeLimit);
    }
    let parser = MessageParser::new()
        .with_mime_headers()
        .with_address_headers()
        .header_text(HeaderName::Subject)
        .header_text(HeaderName::Comments)
        .header_text(HeaderName::Keywords)
        .header_text(HeaderName::SioLabel)
        .header_text(HeaderName::Other("msip_labels".into()))
        .default_header_ignore();
    match parser.parse(&bytes[..kept]) {
        Some(message) => read_message(reader, &message),
        None => {
            reader.note(Incomplete::Corrupt);
            Ok(())
        }
    }
}

/// Where to cut `bytes` so that at most [`MAX_STRUCTURE_LINES`] lines can each make a header or a part.
fn structure_cut(bytes: &[u8]) -> usize {
    let mut counted = 0;
    let mut at = 0;
    while at < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |n| at + n + 1);
        let line = &bytes[at..end];
        let field = line
            .iter()
            .position(|&b| b == b':')
            .is_some_and(|colon| colon > 0 && line[..colon].iter().all(|&b| b.is_ascii_graphic()));
        if field || line.starts_with(b"--") {
            counted += 1;
            if counted > MAX_STRUCTURE_LINES {
                return at;
            }
        }
        at = end;
    }
    bytes.len()
}

fn read_message(reader: &mut Reader<'_>, message: &Message<'_>) -> Step {
    for (index, part) in message.parts.iter().enumerate() {
        reader.tick()?;
        if index == 0 {
            read_headers(reader, &part.headers)?;
        }
        if part.is_encoding_problem {
            reader.note(Incomplete::Corrupt);
        }
        let name = part.attachment_name();
        let attached = name.is_some()
            || part
                .content_disposition()
                .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
        if let Some(name) = name {
            reader.name(name)?;
        }
        match &part.body {
            PartType::Multipart(_) => {}
            // A body's text; attached text (a .csv, an .html page, a .txt) is read as the file it is.
            PartType::Text(text) if !attached => {
                for line in text.lines() {
                    reader.text(line)?;
                    reader.end_paragraph();
                }
                reader.close_passage();
            }
            PartType::Html(html) if !attached => reader.html(html)?,
            PartType::Text(text) | PartType::Html(text) => {
                super::nested(reader, text.as_bytes())?;
            }
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                super::nested(reader, bytes)?;
            }
            PartType::Message(inner) => {
                if reader.enter_nested() {
                    let step = read_message(reader, inner);
                    reader.leave_nested();
                    step?;
                }
            }
        }
    }
    Ok(())
}

/// The headers a reader sees, one per line, then a passage of their own.
fn read_headers(reader: &mut Reader<'_>, headers: &[mail_parser::Header<'_>]) -> Step {
    for header in headers {
        match &header.value {
            HeaderValue::Address(address) if is_address_header(&header.name) => {
                read_address(reader, address)?;
            }
            HeaderValue::Text(text) if is_text_header(&header.name) => line(reader, text)?,
            HeaderValue::TextList(texts) if is_text_header(&header.name) => {
                for text in texts {
                    line(reader, text)?;
                }
            }
            _ => {}
        }
    }
    reader.close_passage();
    Ok(())
}

fn is_address_header(name: &HeaderName<'_>) -> bool {
    matches!(
        name,
        HeaderName::From
            | HeaderName::Sender
            | HeaderName::ReplyTo
            | HeaderName::To
            | HeaderName::Cc
            | HeaderName::Bcc
    )
}

fn is_text_header(name: &HeaderName<'_>) -> bool {
    match name {
        HeaderName::Subject
        | HeaderName::Comments
        | HeaderName::Keywords
        | HeaderName::SioLabel => true,
        HeaderName::Other(other) => other.eq_ignore_ascii_case("msip_labels"),
        _ => false,
    }
}

/// Each mailbox on a line, as a mail client shows it: `Name <address>`; a group's name on a line before its members.
fn read_address(reader: &mut Reader<'_>, address: &Address<'_>) -> Step {
    match address {
        Address::List(list) => list.iter().try_for_each(|addr| mailbox(reader, addr)),
        Address::Group(groups) => groups.iter().try_for_each(|group| {
            if let Some(name) = &group.name {
                line(reader, name)?;
            }
            group
                .addresses
                .iter()
                .try_for_each(|addr| mailbox(reader, addr))
        }),
    }
}

fn mailbox(reader: &mut Reader<'_>, addr: &Addr<'_>) -> Step {
    let shown: Cow<'_, str> = match (&addr.name, &addr.address) {
        (Some(name), Some(address)) => format!("{name} <{address}>").into(),
        (Some(name), None) => Cow::Borrowed(name),
        (None, Some(address)) => Cow::Borrowed(address),
        (None, None) => return Ok(()),
    };
    line(reader, &shown)
}

/// One header value as a line (a folded header is one line).
fn line(reader: &mut Reader<'_>, text: &str) -> Step {
    let text = text.trim();
    if text.is_empty() {
        return Ok(());
    }
    if text.contains(['\r', '\n']) {
        reader.text(&text.replace(['\r', '\n'], " "))?;
    } else {
        reader.text(text)?;
    }
    reader.end_paragraph();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{MARK, fixture, has_mark_line, lines, scan};
    use crate::{Incomplete, Passage};

    /// Thunderbird's layout: the headers a reader sees (encoded words decoded), both alternatives of the body, and
    /// the attached docx read as the upload it would be, under its file name.
    #[test]
    fn thunderbird_message_with_a_docx_attached() {
        let scan = scan(&fixture("mail/thunderbird_docx_attached.eml"));
        assert_eq!(scan.format.as_str(), "eml");
        assert_eq!(scan.incomplete, None);
        let lines = lines(&scan);
        assert!(
            lines.contains(&"Note pour la réunion budgétaire".to_owned()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"Jérôme Lefèvre <jerome.lefevre@interieur.gouv.fr>".to_owned()),
            "{lines:?}"
        );
        assert!(lines.contains(&"Marie Dupont <marie.dupont@interieur.gouv.fr>".to_owned()));
        assert!(
            lines.contains(
                &"Voici la note pour la réunion budgétaire de jeudi. Les chiffres définitifs"
                    .to_owned()
            )
        );
        assert!(
            scan.passages
                .iter()
                .any(|p| matches!(p, Passage::Html(html) if html.contains("Bonjour Marie")))
        );
        assert!(
            scan.passages
                .contains(&Passage::Name("note_budget.docx".into()))
        );
        // The marking is in the docx's page header only.
        assert!(has_mark_line(&scan), "{lines:?}");
    }

    /// Outlook's layout: an iso-8859-1 quoted-printable body (soft line breaks joined, accents decoded) and a PDF.
    #[test]
    fn outlook_quoted_printable_body() {
        let scan = scan(&fixture("mail/outlook_marking_in_body.eml"));
        assert_eq!(scan.format.as_str(), "eml");
        let lines = lines(&scan);
        assert!(has_mark_line(&scan), "{lines:?}");
        assert!(lines.contains(
            &"Vous trouverez ci-joint le rapport de la commission. Le compte rendu de la séance,".to_owned()
        ));
        assert!(
            lines.contains(&"ci-dessous, ne doit pas être transféré hors du ministère.".to_owned())
        );
        assert!(
            lines.contains(&"Rapport de la commission – séance du 12 mars".to_owned()),
            "{lines:?}"
        );
        assert!(lines.contains(&"Lefèvre Jérôme <jerome.lefevre@interieur.gouv.fr>".to_owned()));
        assert!(scan.passages.contains(&Passage::Name("rapport.pdf".into())));
        assert!(
            lines.contains(&"Quarterly review".to_owned()),
            "the PDF is read: {lines:?}"
        );
    }

    /// A subject written as a base64 encoded word is read decoded.
    #[test]
    fn marking_in_an_encoded_subject() {
        let scan = scan(&fixture("mail/marking_in_encoded_subject.eml"));
        assert_eq!(scan.format.as_str(), "eml");
        assert!(
            lines(&scan).contains(&format!("[{MARK}] Réunion budgétaire du 14 mars")),
            "{:?}",
            lines(&scan)
        );
    }

    /// A message forwarded as an attachment (message/rfc822) is read: its headers, its base64 body, and its name
    /// (RFC 2231 encoded).
    #[test]
    fn forwarded_as_attachment() {
        let scan = scan(&fixture("mail/forwarded_as_attachment.eml"));
        assert_eq!(scan.format.as_str(), "eml");
        let lines = lines(&scan);
        assert!(has_mark_line(&scan), "{lines:?}");
        assert!(lines.contains(&"Préparation du conseil".to_owned()));
        assert!(lines.contains(&"Paul Martin <paul.martin@interieur.gouv.fr>".to_owned()));
        assert!(
            scan.passages
                .contains(&Passage::Name("Préparation du conseil.eml".into()))
        );
    }

    /// Text that starts with one header-like line is text; two recognised header names make a message.
    #[test]
    fn sniffed_by_its_header_block() {
        let mail =
            b"From: Paul <p@example.org>\r\nSubject: DIFFUSION RESTREINTE\r\n\r\nBonjour\r\n";
        assert_eq!(scan(mail).format.as_str(), "eml");
        let folded = b"Received: from a\r\n by b; Tue, 12 Mar 2024\r\nX-Mailer: x\r\nDate: Tue, 12 Mar 2024\r\nMessage-ID: <a@b>\r\n\r\nx";
        assert_eq!(scan(folded).format.as_str(), "eml");
        assert_eq!(
            scan(b"Subject: DIFFUSION RESTREINTE\n\nBonjour\n")
                .format
                .as_str(),
            "text"
        );
        assert_eq!(
            scan(b"Date: 12 mars\nLieu: Paris\n\nCompte rendu de la reunion.\n")
                .format
                .as_str(),
            "text"
        );
        assert_eq!(
            scan(b"From: Paul\nSubject: notes\nthis line is prose, not a header\n\nx")
                .format
                .as_str(),
            "text"
        );
    }

    /// A flood of header lines or boundaries is cut before parsing (each would be a structure of its own), noted
    /// `size_limit`; what comes before the cut is read.
    #[test]
    fn structure_floods_are_cut() {
        let mut flood = format!("From: a@b\r\nSubject: {MARK}\r\n");
        flood.push_str(&"X:b\r\n".repeat(super::MAX_STRUCTURE_LINES + 10));
        let scan = scan(flood.as_bytes());
        assert_eq!(scan.format.as_str(), "eml");
        assert_eq!(scan.incomplete, Some(Incomplete::SizeLimit));
        assert!(has_mark_line(&scan));
    }

    /// Messages attached in messages deeper than `max_nesting` stop there, noted `nesting_limit`; a multipart
    /// nested thousands of times gets an answer, quickly.
    #[test]
    fn nesting_is_bounded() {
        let mut message =
            format!("From: a@b\r\nSubject: x\r\nContent-Type: text/plain\r\n\r\n{MARK}\r\n");
        for level in 0..8 {
            message = format!(
                "From: a@b\r\nSubject: level {level}\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n{message}"
            );
        }
        let deep = scan(message.as_bytes());
        assert_eq!(deep.format.as_str(), "eml");
        assert_eq!(deep.incomplete, Some(Incomplete::NestingLimit));
        assert!(!has_mark_line(&deep));

        let levels = 20_000;
        let mut multipart = String::from("From: a@b\r\nSubject: x\r\nMIME-Version: 1.0\r\n");
        for level in 0..levels {
            multipart.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n"
            ));
        }
        multipart.push_str(&format!("Content-Type: text/plain\r\n\r\n{MARK}\r\n"));
        for level in (0..levels).rev() {
            multipart.push_str(&format!("--b{level}--\r\n"));
        }
        let started = std::time::Instant::now();
        let wide = scan(multipart.as_bytes());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(has_mark_line(&wide));
    }
}
