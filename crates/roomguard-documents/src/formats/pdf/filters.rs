//! Stream filters (PDF 32000-1 §7.4) that can carry text: Flate (with PNG predictors), LZW, RunLength, ASCIIHex and
//! ASCII85. Image codecs (DCT, JPX, CCITT, JBIG2) are not decoded: they carry no text.
//!
//! Every byte a filter produces is counted with [`Reader::inflated`] as it is produced, in chunks, so a bomb stops at
//! `media.max_uncompressed_bytes` having held no more than that in memory.

use lopdf::{Dictionary, Object};

use crate::reader::{Incomplete, Reader, Step};

/// Output is produced and counted in chunks of this size.
const CHUNK: usize = 64 * 1024;

/// A stream's filters in order, with their parameters.
fn chain(dict: &Dictionary) -> Vec<(Vec<u8>, Option<&Dictionary>)> {
    let params = |i: usize| -> Option<&Dictionary> {
        match dict.get(b"DecodeParms").or_else(|_| dict.get(b"DP")).ok()? {
            Object::Dictionary(d) if i == 0 => Some(d),
            Object::Array(a) => a.get(i).and_then(|o| o.as_dict().ok()),
            _ => None,
        }
    };
    match dict.get(b"Filter").or_else(|_| dict.get(b"F")) {
        Ok(Object::Name(n)) => vec![(n.clone(), params(0))],
        Ok(Object::Array(a)) => a
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.as_name().ok().map(|n| (n.to_vec(), params(i))))
            .collect(),
        _ => Vec::new(),
    }
}

/// Decodes `data` through the filters `dict` names. `Ok(None)`: an image codec or an unknown filter, nothing to
/// read. A damaged stream gives what was decoded before the damage, and is noted `corrupt`.
pub(super) fn decode(
    reader: &mut Reader<'_>,
    dict: &Dictionary,
    data: &[u8],
) -> Step<Option<Vec<u8>>> {
    let mut current: Option<Vec<u8>> = None;
    for (name, params) in chain(dict) {
        let input = current.as_deref().unwrap_or(data);
        let output = match name.as_slice() {
            b"FlateDecode" | b"Fl" => {
                let inflated = inflate(reader, input)?;
                predict(reader, inflated, params)?
            }
            b"LZWDecode" | b"LZW" => {
                let decoded = lzw(reader, input, params)?;
                predict(reader, decoded, params)?
            }
            b"RunLengthDecode" | b"RL" => run_length(reader, input)?,
            b"ASCIIHexDecode" | b"AHx" => ascii_hex(input),
            b"ASCII85Decode" | b"A85" => ascii85(reader, input),
            // Decryption happened before; an identity crypt filter leaves the bytes as they are.
            b"Crypt" => continue,
            _ => return Ok(None),
        };
        current = Some(output);
    }
    Ok(Some(current.unwrap_or_else(|| data.to_vec())))
}

/// Flate, bounded: zlib-wrapped as the standard says, or raw deflate as some producers write it.
fn inflate(reader: &mut Reader<'_>, input: &[u8]) -> Step<Vec<u8>> {
    let zlib = input.first().is_some_and(|&b| b & 0x0f == 8)
        && input.len() >= 2
        && (u16::from(input[0]) << 8 | u16::from(input[1])) % 31 == 0;
    let mut inflater = flate2::Decompress::new(zlib);
    let mut out: Vec<u8> = Vec::new();
    // Through a chunk of its own (see `zip::inflate`: `decompress_vec` zeroes all of a vector's spare capacity).
    let mut chunk = vec![0; CHUNK];
    loop {
        let budget = usize::try_from(reader.inflate_budget()).unwrap_or(usize::MAX);
        // One byte past the budget tells a bomb from a stream that exactly fills it.
        let room = CHUNK.min(budget.saturating_add(1));
        let before_out = inflater.total_out();
        let consumed = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        let status = inflater.decompress(rest, &mut chunk[..room], flate2::FlushDecompress::None);
        let produced = inflater.total_out() - before_out;
        out.extend_from_slice(&chunk[..usize::try_from(produced).unwrap_or(room)]);
        reader.inflated(produced)?;
        let stalled = produced == 0 && usize::try_from(inflater.total_in()).ok() == Some(consumed);
        match status {
            Ok(flate2::Status::StreamEnd) => break,
            // The input ended (a truncated file) or the data is damaged: keep what came out.
            Ok(_) if stalled => {
                reader.note(Incomplete::Corrupt);
                break;
            }
            Ok(_) => {}
            Err(_) => {
                reader.note(Incomplete::Corrupt);
                break;
            }
        }
    }
    Ok(out)
}

/// PNG predictors (10–15), as object and content streams use them; TIFF predictor 2 is for images only.
fn predict(reader: &mut Reader<'_>, data: Vec<u8>, params: Option<&Dictionary>) -> Step<Vec<u8>> {
    let int = |key: &[u8], default: i64| {
        params
            .and_then(|p| p.get(key).ok())
            .and_then(|o| o.as_i64().ok())
            .unwrap_or(default)
    };
    if int(b"Predictor", 1) < 10 {
        return Ok(data);
    }
    let colors = int(b"Colors", 1).clamp(1, 32) as usize;
    let bits = int(b"BitsPerComponent", 8).clamp(1, 16) as usize;
    let columns = int(b"Columns", 1).clamp(1, 1 << 20) as usize;
    let bpp = (colors * bits).div_ceil(8).max(1);
    let row = (columns * colors * bits).div_ceil(8);
    let mut out = Vec::with_capacity(data.len());
    let mut previous = vec![0u8; row];
    for line in data.chunks(row + 1) {
        reader.tick()?;
        let (&kind, raw) = match line.split_first() {
            Some(split) => split,
            None => break,
        };
        let mut current = raw.to_vec();
        current.resize(row, 0);
        for i in 0..row {
            let left = if i >= bpp { current[i - bpp] } else { 0 };
            let up = previous[i];
            let up_left = if i >= bpp { previous[i - bpp] } else { 0 };
            let add = match kind {
                1 => left,
                2 => up,
                3 => ((u16::from(left) + u16::from(up)) / 2) as u8,
                4 => paeth(left, up, up_left),
                _ => 0,
            };
            current[i] = current[i].wrapping_add(add);
        }
        out.extend_from_slice(&current[..raw.len().min(row)]);
        previous = current;
    }
    Ok(out)
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// LZW with the early change PDF defaults to, bounded like Flate.
fn lzw(reader: &mut Reader<'_>, input: &[u8], params: Option<&Dictionary>) -> Step<Vec<u8>> {
    let early = params
        .and_then(|p| p.get(b"EarlyChange").ok())
        .and_then(|o| o.as_i64().ok())
        .unwrap_or(1);
    let mut decoder = if early == 0 {
        weezl::decode::Decoder::new(weezl::BitOrder::Msb, 8)
    } else {
        weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
    };
    let mut out = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    let mut rest = input;
    loop {
        let result = decoder.decode_bytes(rest, &mut chunk);
        rest = rest.get(result.consumed_in..).unwrap_or_default();
        reader.inflated(result.consumed_out as u64)?;
        out.extend_from_slice(&chunk[..result.consumed_out]);
        match result.status {
            Ok(weezl::LzwStatus::Done) => break,
            Ok(weezl::LzwStatus::NoProgress) => {
                reader.note(Incomplete::Corrupt);
                break;
            }
            Ok(weezl::LzwStatus::Ok) if result.consumed_in == 0 && result.consumed_out == 0 => {
                break;
            }
            Ok(weezl::LzwStatus::Ok) => {}
            Err(_) => {
                reader.note(Incomplete::Corrupt);
                break;
            }
        }
    }
    Ok(out)
}

fn run_length(reader: &mut Reader<'_>, input: &[u8]) -> Step<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&n) = input.get(i) {
        let before = out.len();
        match n {
            128 => break,
            0..=127 => {
                let end = (i + 2 + usize::from(n)).min(input.len());
                out.extend_from_slice(input.get(i + 1..end).unwrap_or_default());
                i = end;
            }
            _ => {
                let Some(&b) = input.get(i + 1) else { break };
                out.extend(std::iter::repeat_n(b, 257 - usize::from(n)));
                i += 2;
            }
        }
        reader.inflated((out.len() - before) as u64)?;
    }
    Ok(out)
}

fn ascii_hex(input: &[u8]) -> Vec<u8> {
    // ASCIIHex is the syntax of a hex string without its opening bracket.
    let mut framed = Vec::with_capacity(input.len() + 1);
    framed.push(b'<');
    framed.extend_from_slice(input);
    match super::lexer::Lexer::new(&framed, 0).token() {
        Some(super::lexer::Token::Str(s, _)) => s,
        _ => Vec::new(),
    }
}

fn ascii85(reader: &mut Reader<'_>, input: &[u8]) -> Vec<u8> {
    let body = input.strip_prefix(b"<~").unwrap_or(input);
    let mut out = Vec::with_capacity(body.len() * 4 / 5);
    let mut group = [0u8; 5];
    let mut n = 0;
    for &c in body {
        match c {
            b'~' => break,
            b'z' if n == 0 => out.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group[n] = c - b'!';
                n += 1;
                if n == 5 {
                    out.extend_from_slice(&base85(&group).to_be_bytes());
                    n = 0;
                }
            }
            c if super::lexer::is_white(c) => {}
            _ => {
                reader.note(Incomplete::Corrupt);
                break;
            }
        }
    }
    if n > 1 {
        // A final partial group: padded with `u`, and only its first n-1 bytes kept.
        group[n..].fill(b'u' - b'!');
        out.extend_from_slice(&base85(&group).to_be_bytes()[..n - 1]);
    }
    out
}

fn base85(group: &[u8; 5]) -> u32 {
    group.iter().fold(0u32, |acc, &d| {
        acc.wrapping_mul(85).wrapping_add(u32::from(d))
    })
}
