//! The formats roomguard reads, told from a file's content.

/// A file's format, from its content: never from its name or declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// PDF.
    Pdf,
    /// Office Open XML word processing.
    Docx,
    /// Office Open XML spreadsheet.
    Xlsx,
    /// Office Open XML presentation.
    Pptx,
    /// OpenDocument text.
    Odt,
    /// OpenDocument spreadsheet.
    Ods,
    /// OpenDocument presentation.
    Odp,
    /// Rich Text Format.
    Rtf,
    /// HTML.
    Html,
    /// Plain text (UTF-8, UTF-16 with a byte order mark, or mostly printable Latin-1).
    Text,
    /// A zip archive that is not one of the office formats.
    Zip,
    /// An e-mail saved as a file (RFC 5322, MIME).
    Eml,
    /// Delimited text: CSV, TSV.
    Csv,
    /// A tar archive.
    Tar,
    /// A gzip-compressed file (a .tar.gz included: its content is read as the tar it is).
    Gzip,
    /// JSON.
    Json,
    /// An SVG drawing.
    Svg,
    // Pictures, read with OCR.
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// TIFF.
    Tiff,
    /// WebP.
    Webp,
    /// GIF.
    Gif,
    /// Anything else (other images, audio, video, binaries): only the file name is classified.
    Unknown,
}

impl Format {
    /// Every format, in the order the contract lists them.
    pub const ALL: [Format; 23] = [
        Format::Pdf,
        Format::Docx,
        Format::Xlsx,
        Format::Pptx,
        Format::Odt,
        Format::Ods,
        Format::Odp,
        Format::Rtf,
        Format::Html,
        Format::Text,
        Format::Zip,
        Format::Eml,
        Format::Csv,
        Format::Tar,
        Format::Gzip,
        Format::Json,
        Format::Svg,
        Format::Png,
        Format::Jpeg,
        Format::Tiff,
        Format::Webp,
        Format::Gif,
        Format::Unknown,
    ];

    /// A picture, read with OCR (whole or not at all: a part of one is not worth reading).
    pub fn is_picture(self) -> bool {
        matches!(
            self,
            Format::Png | Format::Jpeg | Format::Tiff | Format::Webp | Format::Gif
        )
    }

    /// The name in `MediaScan.format`, `r.media.format`, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Xlsx => "xlsx",
            Format::Pptx => "pptx",
            Format::Odt => "odt",
            Format::Ods => "ods",
            Format::Odp => "odp",
            Format::Rtf => "rtf",
            Format::Html => "html",
            Format::Text => "text",
            Format::Zip => "zip",
            Format::Eml => "eml",
            Format::Csv => "csv",
            Format::Tar => "tar",
            Format::Gzip => "gzip",
            Format::Json => "json",
            Format::Svg => "svg",
            Format::Png => "png",
            Format::Jpeg => "jpeg",
            Format::Tiff => "tiff",
            Format::Webp => "webp",
            Format::Gif => "gif",
            Format::Unknown => "unknown",
        }
    }
}
