//! Image files to gray pixels, with the `image` crate (pure Rust decoders), within `media.ocr_max_pixels`.
//!
//! The dimensions come from the file's header, before any pixel is allocated: a picture past the limit is not
//! decoded at all (a 50 KB PNG can declare 100 000 x 100 000 pixels). The decoders' own allocations are bounded
//! too (four bytes a pixel: 8-bit RGBA; a 16-bit RGBA picture of the maximum size is refused by that bound).
//! Phone photos are turned upright by their EXIF orientation, and transparent pixels are laid on white paper, as a
//! viewer shows them.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};

use super::Gray;
use crate::{
    Format,
    reader::{Incomplete, Reader, Step},
};

/// Bytes a decoder may allocate per pixel allowed.
const BYTES_PER_PIXEL: u64 = 4;

/// An image upload (or an image inside an archive or a document) in gray; `None`, noted, when it cannot be decoded
/// or is larger than `max_pixels`.
pub(crate) fn decode_upload(
    reader: &mut Reader<'_>,
    format: Format,
    bytes: &[u8],
    max_pixels: u64,
) -> Step<Option<Gray>> {
    let format = match format {
        Format::Png => ImageFormat::Png,
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Tiff => ImageFormat::Tiff,
        Format::Webp => ImageFormat::WebP,
        Format::Gif => ImageFormat::Gif,
        _ => return Ok(None),
    };
    Ok(noted(reader, decode(format, bytes, max_pixels)))
}

/// A JPEG (a PDF image's `DCTDecode` data) in gray, like [`decode_upload`].
pub(crate) fn decode_jpeg(
    reader: &mut Reader<'_>,
    bytes: &[u8],
    max_pixels: u64,
) -> Step<Option<Gray>> {
    Ok(noted(reader, decode(ImageFormat::Jpeg, bytes, max_pixels)))
}

/// Why a picture was not decoded.
#[derive(Debug)]
enum Refused {
    /// Past `media.ocr_max_pixels` or the allocation bound.
    TooLarge,
    /// Damaged, truncated, or a variant the decoder does not know.
    Broken,
}

fn noted(reader: &mut Reader<'_>, decoded: Result<Gray, Refused>) -> Option<Gray> {
    match decoded {
        Ok(gray) => Some(gray),
        Err(Refused::TooLarge) => {
            reader.note(Incomplete::SizeLimit);
            None
        }
        Err(Refused::Broken) => {
            reader.note(Incomplete::Corrupt);
            None
        }
    }
}

fn decode(format: ImageFormat, bytes: &[u8], max_pixels: u64) -> Result<Gray, Refused> {
    let mut limits = image::Limits::default();
    let side = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    limits.max_alloc = Some(max_pixels.saturating_mul(BYTES_PER_PIXEL));
    let mut image_reader = ImageReader::with_format(Cursor::new(bytes), format);
    image_reader.limits(limits.clone());
    let mut decoder = image_reader.into_decoder().map_err(refused)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(Refused::TooLarge);
    }
    if decoder.total_bytes() > max_pixels.saturating_mul(BYTES_PER_PIXEL) {
        return Err(Refused::TooLarge);
    }
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(refused)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(gray(image))
}

fn refused(err: ImageError) -> Refused {
    match err {
        ImageError::Limits(_) => Refused::TooLarge,
        _ => Refused::Broken,
    }
}

/// The picture in 8-bit gray, transparent pixels on white.
fn gray(image: DynamicImage) -> Gray {
    let (width, height) = (image.width(), image.height());
    let pixels = if image.color().has_alpha() {
        image
            .into_luma_alpha8()
            .pixels()
            .map(|p| {
                let [luma, alpha] = p.0;
                let (luma, alpha) = (u16::from(luma), u16::from(alpha));
                ((luma * alpha + 255 * (255 - alpha)) / 255) as u8
            })
            .collect()
    } else {
        image.into_luma8().into_raw()
    };
    Gray {
        width,
        height,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::testing::limits;

    fn png(width: u32, height: u32, color: image::ExtendedColorType, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new(&mut out),
            data,
            width,
            height,
            color,
        )
        .unwrap();
        out
    }

    /// A picture is decoded to one gray byte a pixel; transparent pixels become white paper, not black.
    #[test]
    fn pictures_become_gray_on_white() {
        let rgba = png(
            2,
            1,
            image::ExtendedColorType::Rgba8,
            &[0, 0, 0, 0, 0, 0, 0, 255],
        );
        let limits = limits();
        let mut reader = Reader::new(&limits);
        let gray = decode_upload(&mut reader, Format::Png, &rgba, 100)
            .unwrap()
            .unwrap();
        assert_eq!((gray.width, gray.height, gray.pixels), (2, 1, vec![255, 0]));
    }

    /// A picture larger than `media.ocr_max_pixels` is refused from its header, before its pixels are allocated,
    /// and noted `size_limit`; a broken one is noted `corrupt`.
    #[test]
    fn large_or_broken_pictures_are_noted() {
        let big = png(100, 100, image::ExtendedColorType::L8, &[255; 10_000]);
        let limits = limits();
        let mut reader = Reader::new(&limits);
        assert_eq!(
            decode_upload(&mut reader, Format::Png, &big, 9_999).unwrap(),
            None
        );
        assert_eq!(
            reader.finish(Format::Png, None, false).incomplete,
            Some(Incomplete::SizeLimit)
        );
        let mut reader = Reader::new(&limits);
        assert_eq!(
            decode_upload(&mut reader, Format::Png, &big[..big.len() / 2], 1 << 20).unwrap(),
            None
        );
        assert_eq!(
            reader.finish(Format::Png, None, false).incomplete,
            Some(Incomplete::Corrupt)
        );
    }
}
