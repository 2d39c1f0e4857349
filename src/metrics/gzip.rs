//! gzip for `/metrics` from pieces compressed separately.
//!
//! The body is one gzip member whose deflate stream is a concatenation of
//! independently compressed, byte-aligned (sync-flushed, never final)
//! [`Segment`]s, then text that changes at every scrape as [`stored`]
//! blocks, then [`gzip_end`]. The CRC-32 of the whole is combined from the
//! pieces' CRCs (`flate2::Crc::combine`), so a scrape never reads or
//! compresses text that did not change.

use bytes::Bytes;
use flate2::Crc;

/// Some text, and the same text as a piece of a deflate stream.
#[derive(Debug, Default)]
pub struct Segment {
    pub text: Bytes,
    /// Raw deflate, byte-aligned, never final: segments concatenate.
    pub deflated: Bytes,
    /// CRC-32 (and length) of `text`.
    pub crc: Crc,
}

/// The CRC-32 and length of `text`.
pub fn crc(text: &[u8]) -> Crc {
    let mut crc = Crc::new();
    crc.update(text);
    crc
}

/// Compresses [`Segment`]s; keeps its (large) state between them.
pub struct Deflater(flate2::Compress);

impl Default for Deflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Deflater {
    pub fn new() -> Self {
        Deflater(flate2::Compress::new(flate2::Compression::fast(), false))
    }

    /// Compresses `text` on its own (no reference to earlier segments),
    /// ending on a byte boundary with a sync flush.
    pub fn segment(&mut self, text: Bytes) -> Segment {
        let crc = crc(&text);
        if text.is_empty() {
            return Segment {
                text,
                deflated: Bytes::new(),
                crc,
            };
        }
        self.0.reset();
        let mut out: Vec<u8> = Vec::with_capacity(text.len() / 4 + 64);
        loop {
            let consumed = self.0.total_in() as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let status =
                self.0
                    .compress_vec(&text[consumed..], &mut out, flate2::FlushCompress::Sync);
            let done = self.0.total_in() as usize == text.len() && out.len() < out.capacity();
            if status.is_err() || done {
                break;
            }
        }
        // `Bytes` keeps the spare capacity (a quarter of the text was
        // reserved; gzip makes it about a fifteenth) as long as the segment lives.
        out.shrink_to_fit();
        Segment {
            text,
            deflated: Bytes::from(out),
            crc,
        }
    }
}

/// `text` as stored (uncompressed) deflate blocks, never final: for small
/// text that changes at every scrape, where compressing costs more than it saves.
pub fn stored(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 5 * (text.len() / 65535 + 1));
    for chunk in text.chunks(65535) {
        let len = chunk.len() as u16;
        out.push(0);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// The gzip header: deflate, no name, no time, unknown OS.
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// An empty final deflate block (fixed Huffman, end of block only), then
/// the gzip trailer for the whole member's `crc` (CRC-32 and length mod 2^32).
pub fn gzip_end(crc: &Crc) -> [u8; 10] {
    let mut end = [0u8; 10];
    end[0] = 0x03;
    end[2..6].copy_from_slice(&crc.sum().to_le_bytes());
    end[6..10].copy_from_slice(&crc.amount().to_le_bytes());
    end
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn segments_stored_blocks_and_end_make_one_gzip_member() {
        let parts: [&[u8]; 4] = [b"# HELP a\n", b"", &[b'x'; 70_000], b"a{b=\"c\"} 1\n"];
        let mut deflater = Deflater::new();
        let mut gz = GZIP_HEADER.to_vec();
        let mut all = Crc::new();
        let mut text = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let deflated = if i % 2 == 0 {
                deflater
                    .segment(Bytes::copy_from_slice(part))
                    .deflated
                    .to_vec()
            } else {
                stored(part)
            };
            gz.extend_from_slice(&deflated);
            all.combine(&crc(part));
            text.extend_from_slice(part);
        }
        assert_eq!(all.sum(), crc(&text).sum(), "combined CRC");
        gz.extend_from_slice(&gzip_end(&all));
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, text);
    }
}
