//! Scanned pages: the images a page with no text draws, decoded from their own data and read with OCR.
//!
//! A scanner's PDF is one image per page and no text. The images a page really draws are the ones its content
//! stream paints with `Do` (directly, or inside the forms it draws), looked up in its resources: a document whose
//! pages share one resource dictionary listing every page's image still gets one image per page. Each image is
//! decoded from its own data, no renderer involved: JPEG (`DCTDecode`), raw samples (Flate, LZW, RunLength or none;
//! gray, RGB, CMYK, indexed, separations, image masks), CCITT fax (group 3 and 4) and JBIG2, the codecs scanners
//! write. An image in another codec (JPEG 2000), or one that cannot be decoded, is noted `unsupported`.

use lopdf::{Dictionary, Object, ObjectId};

use super::filters;
use super::lexer::{Lexer, Token};
use super::store::Store;
use crate::{
    ocr::{self, Gray, Pictures},
    reader::{Incomplete, Reader, Step},
};

/// A page that adds fewer characters than this to the text (spaces between words included) has no text layer worth
/// the name: a page number, a scanner's date stamp. Its images are read with OCR.
pub(super) const SCANNED_PAGE_CHARS: u64 = 24;

/// Forms inside forms followed to find images (a scan is one image, sometimes wrapped in one form).
const MAX_FORM_DEPTH: usize = 4;
/// Images taken from one page at most (a scanner writes one, or one per strip).
const MAX_IMAGES_PER_PAGE: usize = 64;

/// Reads the images of `pages` (the pages that had no text) with OCR.
pub(super) fn read(reader: &mut Reader<'_>, store: &Store<'_>, pages: &[&Dictionary]) -> Step {
    let mut images = Vec::new();
    for (index, page) in pages.iter().enumerate() {
        reader.tick()?;
        let resources = super::resources(store, page);
        let mut data = Vec::new();
        for content in super::contents(store, page) {
            reader.tick()?;
            if let Some(bytes) = store.stream_bytes(reader, content)? {
                data.extend_from_slice(&bytes);
                data.push(b'\n');
            }
        }
        let mut found = Vec::new();
        drawn(reader, store, &data, resources, 0, &mut found)?;
        images.extend(found.into_iter().map(|id| (index, id)));
    }
    ocr::read(reader, &mut PageImages { store, images })
}

/// The image XObjects that `content` draws with `Do`, in drawing order, through the forms it draws.
fn drawn(
    reader: &mut Reader<'_>,
    store: &Store<'_>,
    content: &[u8],
    resources: Option<&Dictionary>,
    depth: usize,
    found: &mut Vec<ObjectId>,
) -> Step {
    let mut lexer = Lexer::new(content, 0);
    let mut last_name: Option<Vec<u8>> = None;
    while let Some(token) = lexer.token() {
        reader.tick()?;
        match token {
            Token::Name(name) => last_name = Some(name),
            Token::Keyword(b"Do") => {
                let Some(name) = last_name.take() else {
                    continue;
                };
                let Some(id) = resources
                    .and_then(|r| store.dict_in(r, b"XObject"))
                    .and_then(|x| x.get(&name).ok())
                    .and_then(|o| store.stream_id(o))
                else {
                    continue;
                };
                let Ok(dict) = store.get(id).as_dict() else {
                    continue;
                };
                match store.get_in(dict, b"Subtype").as_name() {
                    Ok(b"Image") if !found.contains(&id) && found.len() < MAX_IMAGES_PER_PAGE => {
                        found.push(id)
                    }
                    Ok(b"Form") if depth < MAX_FORM_DEPTH => {
                        if let Some(form) = store.stream_bytes(reader, id)? {
                            let inner = store.dict_in(dict, b"Resources").or(resources);
                            drawn(reader, store, &form, inner, depth + 1, found)?;
                        }
                    }
                    _ => {}
                }
            }
            // An inline image's data is not operators: skip to its end.
            Token::Keyword(b"ID") => skip_inline_data(&mut lexer),
            Token::Keyword(_) => last_name = None,
            _ => {}
        }
    }
    Ok(())
}

/// Moves past `<data> EI` of an inline image.
fn skip_inline_data(lexer: &mut Lexer<'_>) {
    let bytes = lexer.bytes();
    let mut at = lexer.pos();
    while let Some(found) = memchr::memmem::find(&bytes[at..], b"EI") {
        let ei = at + found;
        let before = ei == 0 || super::lexer::is_white(bytes[ei - 1]);
        let after = bytes.get(ei + 2).is_none_or(|&b| super::lexer::is_white(b));
        if before && after {
            lexer.seek(ei + 2);
            return;
        }
        at = ei + 2;
    }
    lexer.seek(bytes.len());
}

/// The images of the scanned pages, decoded when OCR asks for them.
struct PageImages<'s, 'a> {
    store: &'s Store<'a>,
    /// (page, image) in reading order.
    images: Vec<(usize, ObjectId)>,
}

impl Pictures for PageImages<'_, '_> {
    fn count(&self) -> usize {
        self.images.len()
    }

    fn page(&self, index: usize) -> usize {
        self.images.get(index).map_or(0, |(page, _)| *page)
    }

    fn decode(
        &mut self,
        reader: &mut Reader<'_>,
        index: usize,
        max_pixels: u64,
    ) -> Step<Option<Gray>> {
        let Some(&(_, id)) = self.images.get(index) else {
            return Ok(None);
        };
        decode(reader, self.store, id, max_pixels)
    }
}

/// The codec that ends an image's filter chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    /// Raw samples (after Flate, LZW, RunLength, ASCII filters, or none).
    Samples,
    Dct,
    Ccitt,
    Jbig2,
    /// JPEG 2000, or a filter roomguard does not know.
    Other,
}

/// One image in gray; `None` (noted) when it cannot be decoded.
fn decode(
    reader: &mut Reader<'_>,
    store: &Store<'_>,
    id: ObjectId,
    max_pixels: u64,
) -> Step<Option<Gray>> {
    let Some((dict, raw)) = store.stream_raw(id) else {
        reader.note(Incomplete::Corrupt);
        return Ok(None);
    };
    let int = |key: &[u8]| store.get_in(dict, key).as_i64().ok();
    let (Some(width), Some(height)) = (
        int(b"Width").and_then(|w| u32::try_from(w).ok()),
        int(b"Height").and_then(|h| u32::try_from(h).ok()),
    ) else {
        reader.note(Incomplete::Corrupt);
        return Ok(None);
    };
    if u64::from(width) * u64::from(height) > max_pixels {
        reader.note(Incomplete::SizeLimit);
        return Ok(None);
    }
    let names = filter_names(store, dict);
    let codec = match names.last().map(Vec::as_slice) {
        Some(b"DCTDecode" | b"DCT") => Codec::Dct,
        Some(b"CCITTFaxDecode" | b"CCF") => Codec::Ccitt,
        Some(b"JBIG2Decode") => Codec::Jbig2,
        Some(b"JPXDecode") => Codec::Other,
        _ => Codec::Samples,
    };
    if codec == Codec::Other {
        reader.note(Incomplete::Unsupported);
        return Ok(None);
    }
    // The filters before the codec (an ASCII85 or Flate wrapping of JPEG data), or the whole chain for samples.
    let data = if codec == Codec::Samples {
        filters::decode(reader, dict, &raw)?
    } else if names.len() > 1 {
        filters::decode(reader, &leading_filters(store, dict, names.len() - 1), &raw)?
    } else {
        Some(raw.to_vec())
    };
    let Some(data) = data else {
        // A filter roomguard does not decode.
        reader.note(Incomplete::Unsupported);
        return Ok(None);
    };
    let params = codec_params(store, dict, names.len().saturating_sub(1));
    let inverted = decode_inverted(store, dict);
    let gray = match codec {
        Codec::Dct => return ocr::decode_jpeg(reader, &data, max_pixels),
        Codec::Ccitt => ccitt(store, params, width, height, &data),
        Codec::Jbig2 => jbig2(store, params, &data, max_pixels),
        Codec::Samples => samples(
            store,
            dict,
            width,
            height,
            &predicted(store, params, width, dict, data),
        ),
        Codec::Other => None,
    };
    match gray {
        Some(mut gray) => {
            if inverted {
                gray.pixels.iter_mut().for_each(|p| *p = 255 - *p);
            }
            Ok(Some(gray))
        }
        None => {
            reader.note(Incomplete::Unsupported);
            Ok(None)
        }
    }
}

/// The names of an image's filters, in order.
fn filter_names(store: &Store<'_>, dict: &Dictionary) -> Vec<Vec<u8>> {
    let filter = dict
        .get(b"Filter")
        .or_else(|_| dict.get(b"F"))
        .map(|f| store.resolve(f));
    match filter {
        Ok(Object::Name(name)) => vec![name.clone()],
        Ok(Object::Array(items)) => items
            .iter()
            .filter_map(|o| store.resolve(o).as_name().ok().map(<[u8]>::to_vec))
            .collect(),
        _ => Vec::new(),
    }
}

/// The decode parameters of filter `index`.
fn codec_params<'s>(
    store: &'s Store<'_>,
    dict: &'s Dictionary,
    index: usize,
) -> Option<&'s Dictionary> {
    let params = dict.get(b"DecodeParms").or_else(|_| dict.get(b"DP")).ok()?;
    match store.resolve(params) {
        Object::Dictionary(d) if index == 0 => Some(d),
        Object::Array(items) => items
            .get(index)
            .and_then(|o| store.resolve(o).as_dict().ok()),
        _ => None,
    }
}

/// A copy of `dict` naming only its first `count` filters (with their parameters), for [`filters::decode`].
fn leading_filters(store: &Store<'_>, dict: &Dictionary, count: usize) -> Dictionary {
    let names = filter_names(store, dict);
    let mut leading = Dictionary::new();
    leading.set(
        "Filter",
        Object::Array(names.into_iter().take(count).map(Object::Name).collect()),
    );
    let params: Vec<Object> = (0..count)
        .map(|i| {
            codec_params(store, dict, i).map_or(Object::Null, |d| Object::Dictionary(d.clone()))
        })
        .collect();
    leading.set("DecodeParms", Object::Array(params));
    leading
}

/// `/Decode [1 0 ...]`: the first component's range is reversed (a negative, or a mask painting its 1 bits).
fn decode_inverted(store: &Store<'_>, dict: &Dictionary) -> bool {
    let Object::Array(decode) = store.get_in(dict, b"Decode") else {
        return false;
    };
    match (
        decode.first().and_then(super::lexer::as_f32),
        decode.get(1).and_then(super::lexer::as_f32),
    ) {
        (Some(low), Some(high)) => low > high,
        _ => false,
    }
}

/// A bi-level picture filled pixel by pixel: a CCITT or JBIG2 decoder's output, as sample bits (0 black, as PDF's
/// gray reads them).
struct BiLevel {
    gray: Gray,
    at: usize,
    row: usize,
}

impl BiLevel {
    fn new(width: u32, height: u32) -> BiLevel {
        BiLevel {
            gray: Gray {
                width,
                height,
                pixels: vec![255; width as usize * height as usize],
            },
            at: 0,
            row: 0,
        }
    }

    fn push(&mut self, black: bool, count: usize) {
        let width = self.gray.width as usize;
        let end = (self.at + count).min(width);
        if black {
            let start = self.row * width;
            if let Some(run) = self.gray.pixels.get_mut(start + self.at..start + end) {
                run.fill(0);
            }
        }
        self.at = end;
    }

    fn next_line(&mut self) {
        self.row += 1;
        self.at = 0;
    }
}

impl hayro_ccitt::Decoder for BiLevel {
    fn push_pixel(&mut self, white: bool) {
        self.push(!white, 1);
    }

    fn push_pixel_chunk(&mut self, white: bool, chunk_count: u32) {
        self.push(!white, chunk_count as usize * 8);
    }

    fn next_line(&mut self) {
        BiLevel::next_line(self);
    }
}

impl hayro_jbig2::Decoder for BiLevel {
    fn push_pixel(&mut self, black: bool) {
        self.push(black, 1);
    }

    fn push_pixel_chunk(&mut self, black: bool, chunk_count: u32) {
        self.push(black, chunk_count as usize * 8);
    }

    fn next_line(&mut self) {
        BiLevel::next_line(self);
    }
}

/// CCITT fax data (PDF 32000-1 §7.4.6), decoded as far as it is readable.
fn ccitt(
    store: &Store<'_>,
    params: Option<&Dictionary>,
    width: u32,
    height: u32,
    data: &[u8],
) -> Option<Gray> {
    let int = |key: &[u8], default: i64| {
        params
            .and_then(|p| store.get_in(p, key).as_i64().ok())
            .unwrap_or(default)
    };
    let flag = |key: &[u8], default: bool| {
        params
            .and_then(|p| store.get_in(p, key).as_bool().ok())
            .unwrap_or(default)
    };
    let k = int(b"K", 0);
    let columns = u32::try_from(int(b"Columns", 1728))
        .ok()
        .filter(|&c| c > 0)?;
    let rows = u32::try_from(int(b"Rows", i64::from(height)))
        .ok()
        .filter(|&r| r > 0)?;
    let settings = hayro_ccitt::DecodeSettings {
        columns,
        rows,
        end_of_block: flag(b"EndOfBlock", true),
        end_of_line: flag(b"EndOfLine", false),
        rows_are_byte_aligned: flag(b"EncodedByteAlign", false),
        encoding: match k {
            k if k < 0 => hayro_ccitt::EncodingMode::Group4,
            0 => hayro_ccitt::EncodingMode::Group3_1D,
            k => hayro_ccitt::EncodingMode::Group3_2D {
                k: u32::try_from(k).unwrap_or(u32::MAX),
            },
        },
        // BlackIs1: the decoded bits are 1 for black, which PDF's gray reads as white.
        invert_black: flag(b"BlackIs1", false),
    };
    let mut picture = BiLevel::new(width.min(columns), height.min(rows));
    let mut context = hayro_ccitt::DecoderContext::new(settings);
    // A damaged stream keeps the rows decoded before the damage.
    let decoded = hayro_ccitt::decode(data, &mut picture, &mut context);
    (decoded.is_ok() || picture.row > 0).then_some(picture.gray)
}

/// JBIG2 data (PDF 32000-1 §7.4.7), with the document's global segments when it has some.
fn jbig2(
    store: &Store<'_>,
    params: Option<&Dictionary>,
    data: &[u8],
    max_pixels: u64,
) -> Option<Gray> {
    let globals = params
        .and_then(|p| p.get(b"JBIG2Globals").ok())
        .and_then(|g| store.stream_id(g))
        .and_then(|id| store.stream_raw(id))
        .map(|(_, bytes)| bytes.into_owned());
    let image = hayro_jbig2::Image::new_embedded(data, globals.as_deref()).ok()?;
    let (width, height) = (image.width(), image.height());
    if u64::from(width) * u64::from(height) > max_pixels {
        return None;
    }
    let mut picture = BiLevel::new(width, height);
    // JBIG2 writes black as 1 where PDF's gray reads 0 as black: the filter's output is the inverse bits, so its
    // black pixels show black, as the decoder reports them.
    image.decode(&mut picture).ok()?;
    Some(picture.gray)
}

/// TIFF predictor 2 (horizontal differencing), which [`filters::decode`] leaves to image readers.
fn predicted(
    store: &Store<'_>,
    params: Option<&Dictionary>,
    width: u32,
    dict: &Dictionary,
    mut data: Vec<u8>,
) -> Vec<u8> {
    let predictor = params.and_then(|p| store.get_in(p, b"Predictor").as_i64().ok());
    let bits = store
        .get_in(dict, b"BitsPerComponent")
        .as_i64()
        .unwrap_or(8);
    if predictor != Some(2) || bits != 8 {
        return data;
    }
    let colors = params
        .and_then(|p| store.get_in(p, b"Colors").as_i64().ok())
        .unwrap_or(1)
        .clamp(1, 32) as usize;
    let row = width as usize * colors;
    if row == 0 {
        return data;
    }
    for line in data.chunks_mut(row) {
        for i in colors..line.len() {
            line[i] = line[i].wrapping_add(line[i - colors]);
        }
    }
    data
}

/// How an image's components make a gray level.
#[derive(Debug, Clone, PartialEq)]
enum Space {
    /// One component, 0 black.
    Gray,
    Rgb,
    Cmyk,
    /// Inks (Separation, DeviceN): 0 no ink (white), the maximum full ink.
    Ink(usize),
    /// CIE L*a*b*: the lightness alone.
    Lab,
    /// A palette: each index's gray level.
    Indexed(Vec<u8>),
}

impl Space {
    fn components(&self) -> usize {
        match self {
            Space::Gray | Space::Indexed(_) => 1,
            Space::Rgb | Space::Lab => 3,
            Space::Cmyk => 4,
            Space::Ink(n) => *n,
        }
    }

    /// The gray level of one pixel's components, each 0 to 255.
    fn gray(&self, c: &[u8]) -> u8 {
        match self {
            Space::Gray | Space::Lab => c[0],
            Space::Rgb => luma(c[0], c[1], c[2]),
            Space::Cmyk => {
                let k = u16::from(c[3]);
                let ink = |v: u8| 255 - (u16::from(v) + k).min(255) as u8;
                luma(ink(c[0]), ink(c[1]), ink(c[2]))
            }
            Space::Ink(_) => 255 - c.iter().copied().max().unwrap_or(0),
            Space::Indexed(palette) => palette.get(usize::from(c[0])).copied().unwrap_or(255),
        }
    }
}

fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b)) / 1000) as u8
}

/// The colour space an image's samples are in; `None` for one roomguard cannot make gray (a pattern, a missing one).
fn space(store: &Store<'_>, object: &Object, depth: usize) -> Option<Space> {
    let object = store.resolve(object);
    let (family, rest): (&[u8], &[Object]) = match object {
        Object::Name(name) => (name, &[]),
        Object::Array(items) => (store.resolve(items.first()?).as_name().ok()?, &items[1..]),
        _ => return None,
    };
    Some(match family {
        b"DeviceGray" | b"G" | b"CalGray" => Space::Gray,
        b"DeviceRGB" | b"RGB" | b"CalRGB" => Space::Rgb,
        b"DeviceCMYK" | b"CMYK" => Space::Cmyk,
        b"Lab" => Space::Lab,
        b"ICCBased" => {
            let n = rest
                .first()
                .and_then(|s| store.resolve(s).as_dict().ok())
                .and_then(|d| store.get_in(d, b"N").as_i64().ok())?;
            match n {
                1 => Space::Gray,
                3 => Space::Rgb,
                4 => Space::Cmyk,
                _ => return None,
            }
        }
        b"Separation" => Space::Ink(1),
        b"DeviceN" => Space::Ink(match rest.first().map(|n| store.resolve(n)) {
            Some(Object::Array(names)) if !names.is_empty() => names.len(),
            _ => return None,
        }),
        b"Indexed" | b"I" if depth == 0 => {
            let base = space(store, rest.first()?, depth + 1)?;
            let lookup: Vec<u8> = match store.resolve(rest.get(2)?) {
                Object::String(bytes, _) => bytes.clone(),
                other => {
                    let id = store
                        .stream_id(other)
                        .or_else(|| store.stream_id(rest.get(2)?))?;
                    store.stream_raw(id).map(|(_, b)| b.into_owned())?
                }
            };
            let components = base.components();
            Space::Indexed(
                lookup
                    .chunks_exact(components)
                    .map(|c| base.gray(c))
                    .collect(),
            )
        }
        _ => return None,
    })
}

/// Raw samples to gray: any of 1, 2, 4, 8 or 16 bits a component, rows padded to a byte.
fn samples(
    store: &Store<'_>,
    dict: &Dictionary,
    width: u32,
    height: u32,
    data: &[u8],
) -> Option<Gray> {
    let mask = store.get_in(dict, b"ImageMask").as_bool().unwrap_or(false);
    let space = if mask {
        Space::Gray
    } else {
        space(
            store,
            dict.get(b"ColorSpace").or_else(|_| dict.get(b"CS")).ok()?,
            0,
        )?
    };
    let bits = if mask {
        1
    } else {
        store
            .get_in(dict, b"BitsPerComponent")
            .as_i64()
            .unwrap_or(8)
    };
    let bits = usize::try_from(bits)
        .ok()
        .filter(|b| matches!(b, 1 | 2 | 4 | 8 | 16))?;
    let components = space.components();
    let row_bytes = (width as usize * components * bits).div_ceil(8);
    let indexed = matches!(space, Space::Indexed(_));
    let max = (1u32 << bits.min(8)) - 1;
    let mut pixels = Vec::with_capacity(width as usize * height as usize);
    let mut values = vec![0u8; components];
    for y in 0..height as usize {
        let row = data.get(y * row_bytes..(y + 1) * row_bytes);
        for x in 0..width as usize {
            let Some(row) = row else {
                // Rows missing from a truncated stream are blank paper.
                pixels.push(255);
                continue;
            };
            for (c, value) in values.iter_mut().enumerate() {
                let bit = (x * components + c) * bits;
                let sample = match bits {
                    16 => u32::from(row[bit / 8]),
                    8 => u32::from(row[bit / 8]),
                    _ => (u32::from(row[bit / 8]) >> (8 - bits - bit % 8)) & max,
                };
                *value = if indexed || bits >= 8 {
                    sample.min(255) as u8
                } else {
                    (sample * 255 / max) as u8
                };
            }
            pixels.push(space.gray(&values));
        }
    }
    Some(Gray {
        width,
        height,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Format, Incomplete,
        formats::testing::{fixture, has_mark_line, limits, lines, require_tesseract, scan},
    };

    /// A one-page PDF whose page draws one image (`entries` of its dictionary, `data` its stream) and has no text.
    fn pdf_with_image(entries: &str, data: &[u8]) -> Vec<u8> {
        let mut out = b"%PDF-1.4\n".to_vec();
        let content = b"q 100 0 0 100 0 0 cm /Im0 Do Q";
        let objects: Vec<Vec<u8>> = vec![
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 100 100] /Resources << /XObject << /Im0 4 0 R >> >> /Contents 5 0 R >>".to_vec(),
            [
                format!("<< /Type /XObject /Subtype /Image {entries} /Length {} >>\nstream\n", data.len()).as_bytes(),
                data,
                b"\nendstream",
            ]
            .concat(),
            [format!("<< /Length {} >>\nstream\n", content.len()).as_bytes(), content, b"\nendstream"].concat(),
        ];
        for (n, body) in objects.iter().enumerate() {
            out.extend_from_slice(format!("{} 0 obj\n", n + 1).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\nendobj\n");
        }
        out.extend_from_slice(b"trailer\n<< /Root 1 0 R >>\nstartxref\n0\n%%EOF\n");
        out
    }

    /// The gray picture of the one image in `pdf`, and what the scan noted.
    fn decoded(pdf: &[u8]) -> (Option<Gray>, Option<Incomplete>) {
        let limits = limits();
        let mut reader = Reader::new(&limits);
        let store = Store::scan(&mut reader, pdf).unwrap();
        let gray = decode(&mut reader, &store, (4, 0), 1 << 20).unwrap();
        (gray, reader.finish(Format::Pdf, None, false).incomplete)
    }

    /// Raw samples become gray whatever their colour space and depth: 1-bit gray, 8-bit RGB, CMYK, an indexed
    /// palette, an image mask (0 paints), and `/Decode [1 0]` reverses them.
    #[test]
    fn samples_in_every_colour_space_become_gray() {
        let gray =
            |entries: &str, data: &[u8]| decoded(&pdf_with_image(entries, data)).0.unwrap().pixels;
        assert_eq!(
            gray(
                "/Width 4 /Height 1 /ColorSpace /DeviceGray /BitsPerComponent 1",
                &[0b0101_0000]
            ),
            [0, 255, 0, 255]
        );
        assert_eq!(
            gray(
                "/Width 2 /Height 1 /ColorSpace /DeviceRGB /BitsPerComponent 8",
                &[255, 255, 255, 255, 0, 0]
            ),
            [255, 76]
        );
        assert_eq!(
            gray(
                "/Width 2 /Height 1 /ColorSpace /DeviceCMYK /BitsPerComponent 8",
                &[0, 0, 0, 0, 0, 0, 0, 255]
            ),
            [255, 0]
        );
        assert_eq!(
            gray(
                "/Width 3 /Height 1 /ColorSpace [/Indexed /DeviceRGB 1 <FFFFFF000000>] /BitsPerComponent 8",
                &[1, 0, 1]
            ),
            [0, 255, 0]
        );
        assert_eq!(
            gray(
                "/Width 2 /Height 2 /ColorSpace /DeviceGray /BitsPerComponent 4",
                &[0xF0, 0x0F]
            ),
            [255, 0, 0, 255]
        );
        assert_eq!(
            gray("/Width 2 /Height 1 /ImageMask true", &[0b0100_0000]),
            [0, 255]
        );
        assert_eq!(
            gray(
                "/Width 2 /Height 1 /ImageMask true /Decode [1 0]",
                &[0b0100_0000]
            ),
            [255, 0]
        );
        // Rows a truncated stream lost are blank paper.
        assert_eq!(
            gray(
                "/Width 2 /Height 2 /ColorSpace /DeviceGray /BitsPerComponent 8",
                &[0, 0]
            ),
            [0, 0, 255, 255]
        );
    }

    /// An image in a codec roomguard does not decode (JPEG 2000), or in a colour space it cannot make gray, is noted
    /// `unsupported`; one larger than `media.ocr_max_pixels` `size_limit`, from its dictionary alone.
    #[test]
    fn images_that_cannot_be_read_are_noted() {
        let jpx = pdf_with_image("/Width 2 /Height 2 /Filter /JPXDecode", b"\0\0\0\x0cjP  ");
        assert_eq!(decoded(&jpx), (None, Some(Incomplete::Unsupported)));
        let pattern = pdf_with_image(
            "/Width 1 /Height 1 /ColorSpace /Pattern /BitsPerComponent 8",
            &[0],
        );
        assert_eq!(decoded(&pattern), (None, Some(Incomplete::Unsupported)));
        let huge = pdf_with_image(
            "/Width 100000 /Height 100000 /ColorSpace /DeviceGray /BitsPerComponent 8",
            &[0],
        );
        assert_eq!(decoded(&huge), (None, Some(Incomplete::SizeLimit)));
    }

    /// A scanner's PDF, one image a page and no text: the stamp is read from the JPEG, Flate and CCITT G4 images, at
    /// 150 and 300 dpi, straight or askew; a clean scanned page gives its text and no marking.
    #[test]
    fn scanned_pdfs_are_read() {
        require_tesseract();
        for name in [
            "stamped-dct-150dpi.pdf",
            "stamped-flate-150dpi.pdf",
            "stamped-ccitt-300dpi.pdf",
            "stamped-skewed-dct-300dpi.pdf",
        ] {
            let scan = scan(&fixture(&format!("scan/{name}")));
            assert_eq!(scan.format, Format::Pdf);
            assert!(has_mark_line(&scan), "{name}: {:?}", lines(&scan));
            assert_eq!((scan.ocr_pages, scan.incomplete), (1, None), "{name}");
        }
        let clean = scan(&fixture("scan/clean-dct-150dpi.pdf"));
        assert!(!has_mark_line(&clean));
        assert!(
            lines(&clean).join(" ").contains("renouveler le contrat"),
            "{:?}",
            lines(&clean)
        );
    }

    /// Every page's bands are read before any page's middle: a stamp on the second page is found before the first
    /// page's body; past `media.ocr_max_pages` pages are not read (`size_limit`); a page with text is never read
    /// with OCR.
    #[test]
    fn bands_of_every_page_come_first() {
        require_tesseract();
        let two = fixture("scan/stamped-second-page-dct.pdf");
        let scan = scan(&two);
        assert_eq!(scan.ocr_pages, 2);
        let lines = lines(&scan);
        let mark = lines
            .iter()
            .position(|l| l == crate::formats::testing::MARK);
        let body = lines
            .iter()
            .position(|l| l.contains("renouveler le contrat"));
        assert!(
            matches!((mark, body), (Some(m), Some(b)) if m < b),
            "{lines:?}"
        );
        let mut one_page = limits();
        one_page.ocr.max_pages = 1;
        let first_only = crate::extract(&two, false, &one_page);
        assert!(!has_mark_line(&first_only));
        assert_eq!(
            (first_only.ocr_pages, first_only.incomplete),
            (1, Some(Incomplete::SizeLimit))
        );
        let typed = scan_text_pdf();
        assert_eq!((typed.ocr_pages, typed.ocr_chars), (0, 0));
    }

    fn scan_text_pdf() -> crate::Extraction {
        scan(&fixture("pdf/stamped.pdf"))
    }
}
