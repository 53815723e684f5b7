//! Thumbnails of uploaded images. Requests are answered from a fixed set of
//! sizes (as Synapse does), so each image has at most a handful of
//! thumbnails, and decoding is bounded so that no upload can make the
//! server allocate without limit.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{ImageFormat, ImageReader, Limits};

use crate::error::{Error, Result};

/// How a thumbnail fits the requested box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Fills the box exactly, cutting off what overflows.
    Crop,
    /// Fits inside the box, keeping the aspect ratio.
    Scale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThumbnailSpec {
    pub width: u32,
    pub height: u32,
    pub method: Method,
}

impl ThumbnailSpec {
    pub fn file_name(&self, media_id: &str) -> String {
        let method = match self.method {
            Method::Crop => "crop",
            Method::Scale => "scale",
        };
        format!("{media_id}-{}x{}-{method}", self.width, self.height)
    }
}

#[derive(Clone)]
pub struct Thumbnail {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// The sizes thumbnails are made in.
const SIZES: [ThumbnailSpec; 5] = [
    spec(32, 32, Method::Crop),
    spec(96, 96, Method::Crop),
    spec(320, 240, Method::Scale),
    spec(640, 480, Method::Scale),
    spec(800, 600, Method::Scale),
];

const fn spec(width: u32, height: u32, method: Method) -> ThumbnailSpec {
    ThumbnailSpec {
        width,
        height,
        method,
    }
}

/// Images larger than this in either dimension are not thumbnailed.
const MAX_DIMENSION: u32 = 12_000;
/// Images with more pixels than this are not thumbnailed (as Synapse's
/// `max_image_pixels`): decoding takes memory by the pixel, and a small
/// file can declare a huge image.
const MAX_PIXELS: u64 = 32_000_000;
/// Most memory one decode may allocate.
const MAX_DECODE_BYTES: u64 = 256 << 20;

/// The configured size to answer a request with: the smallest one of the
/// same method at least as large as asked, else the largest of it.
pub fn nearest_size(wanted: ThumbnailSpec) -> ThumbnailSpec {
    let same_method = SIZES.iter().filter(|s| s.method == wanted.method);
    same_method
        .clone()
        .filter(|s| s.width >= wanted.width && s.height >= wanted.height)
        .min_by_key(|s| s.width * s.height)
        .or_else(|| same_method.max_by_key(|s| s.width * s.height))
        .copied()
        .unwrap_or(wanted)
}

/// The type thumbnails of an upload of `content_type` are encoded in:
/// JPEG for JPEG photos, PNG for everything else (it keeps transparency).
pub fn output_type(content_type: &str) -> String {
    if content_type.eq_ignore_ascii_case("image/jpeg") {
        "image/jpeg".to_owned()
    } else {
        "image/png".to_owned()
    }
}

fn input_format(content_type: &str) -> Option<ImageFormat> {
    match content_type.to_ascii_lowercase().as_str() {
        "image/png" => Some(ImageFormat::Png),
        "image/jpeg" | "image/jpg" => Some(ImageFormat::Jpeg),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

fn cannot(reason: impl std::fmt::Display) -> Error {
    Error::new(
        http::StatusCode::BAD_REQUEST,
        "M_UNKNOWN",
        format!("Cannot generate a thumbnail: {reason}"),
    )
}

/// Decodes an image (within the limits) and makes its thumbnail.
pub fn make(content_type: &str, original: &[u8], spec: ThumbnailSpec) -> Result<Thumbnail> {
    let format = input_format(content_type).ok_or_else(|| cannot("not a supported image"))?;
    let (width, height) = ImageReader::with_format(Cursor::new(original), format)
        .into_dimensions()
        .map_err(cannot)?;
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(cannot(format!(
            "the image has {width}×{height} pixels, more than {MAX_PIXELS}"
        )));
    }
    let mut reader = ImageReader::with_format(Cursor::new(original), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let image = reader.decode().map_err(cannot)?;
    let resized = match spec.method {
        Method::Crop => image.resize_to_fill(spec.width, spec.height, FilterType::Triangle),
        Method::Scale if image.width() <= spec.width && image.height() <= spec.height => image,
        Method::Scale => image.resize(spec.width, spec.height, FilterType::Triangle),
    };
    let content_type = output_type(content_type);
    let mut bytes = Vec::new();
    let encoded = if content_type == "image/jpeg" {
        resized
            .to_rgb8()
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Jpeg)
    } else {
        resized.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
    };
    encoded.map_err(|e| Error::internal(format!("encoding a thumbnail: {e}")))?;
    Ok(Thumbnail {
        content_type,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_snap_to_configured_sizes() {
        let asked = |w, h, method| nearest_size(spec(w, h, method));
        assert_eq!(asked(20, 20, Method::Crop), spec(32, 32, Method::Crop));
        assert_eq!(asked(64, 50, Method::Crop), spec(96, 96, Method::Crop));
        assert_eq!(asked(500, 500, Method::Crop), spec(96, 96, Method::Crop));
        assert_eq!(
            asked(100, 100, Method::Scale),
            spec(320, 240, Method::Scale)
        );
        assert_eq!(
            asked(700, 500, Method::Scale),
            spec(800, 600, Method::Scale)
        );
        assert_eq!(
            asked(4000, 3000, Method::Scale),
            spec(800, 600, Method::Scale)
        );
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbaImage::from_pixel(width, height, image::Rgba([200, 10, 10, 255]));
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        bytes
    }

    fn dimensions(bytes: &[u8]) -> (u32, u32) {
        let image = image::load_from_memory(bytes).unwrap();
        (image.width(), image.height())
    }

    #[test]
    fn crop_fills_and_scale_fits() {
        let original = png(400, 200);
        let crop = make("image/png", &original, spec(96, 96, Method::Crop)).unwrap();
        assert_eq!(crop.content_type, "image/png");
        assert_eq!(dimensions(&crop.bytes), (96, 96));
        let scale = make("image/png", &original, spec(320, 240, Method::Scale)).unwrap();
        assert_eq!(dimensions(&scale.bytes), (320, 160));
        let small = make("image/png", &png(20, 10), spec(320, 240, Method::Scale)).unwrap();
        assert_eq!(dimensions(&small.bytes), (20, 10));
    }

    /// A PNG that declares `width`×`height` in its header but whose pixel
    /// data is a few bytes: only a decoder that checks the header first
    /// refuses it without trying.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in [
            (b"IHDR", ihdr.as_slice()),
            (b"IDAT", &[0x78, 0x9c, 0x03, 0x00][..]),
            (b"IEND", &[][..]),
        ] {
            png.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut chunk = kind.to_vec();
            chunk.extend_from_slice(data);
            png.extend_from_slice(&chunk);
            png.extend_from_slice(&crc32(&chunk).to_be_bytes());
        }
        png
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn refuses_more_pixels_than_allowed_from_the_header() {
        let err = make(
            "image/png",
            &png_header(12_000, 7_000),
            spec(320, 240, Method::Scale),
        )
        .err()
        .expect("refused");
        assert_eq!(err.status, http::StatusCode::BAD_REQUEST);
        assert!(err.message.contains("12000×7000"), "{}", err.message);
    }

    #[test]
    fn refuses_what_it_cannot_decode() {
        let not_image = make("text/plain", b"hello", spec(32, 32, Method::Crop));
        assert!(not_image.is_err());
        let corrupt = make(
            "image/png",
            b"\x89PNG\r\n\x1a\nbroken",
            spec(32, 32, Method::Crop),
        );
        assert!(corrupt.is_err());
    }
}
