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

/// Text shorter than this is kept in stored (uncompressed) deflate blocks:
/// compressing it saves little, and a store of a few credentials then never
/// makes the compressor's state (about 300 KiB) or the inflater's.
pub const STORE_BELOW: usize = 4096;

/// Compresses [`Segment`]s; keeps its (large) state, made at the first text
/// worth compressing, and its output buffer between them.
pub struct Deflater {
    compress: Option<flate2::Compress>,
    out: Vec<u8>,
}

impl Default for Deflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Deflater {
    pub fn new() -> Self {
        Deflater {
            compress: None,
            out: Vec::new(),
        }
    }

    /// Compresses `text` on its own (no reference to earlier segments),
    /// ending on a byte boundary with a sync flush.
    pub fn segment(&mut self, text: Bytes) -> Segment {
        let (deflated, crc) = self.pack(&text);
        Segment {
            text,
            deflated,
            crc,
        }
    }

    /// `text` as a [`Segment`]'s deflate piece (sized exactly), and its CRC-32.
    pub fn pack(&mut self, text: &[u8]) -> (Bytes, Crc) {
        let crc = crc(text);
        if text.is_empty() {
            return (Bytes::new(), crc);
        }
        if text.len() < STORE_BELOW {
            return (Bytes::from(stored(text)), crc);
        }
        let compress = self
            .compress
            .get_or_insert_with(|| flate2::Compress::new(flate2::Compression::fast(), false));
        compress.reset();
        let out = &mut self.out;
        out.clear();
        out.reserve(text.len() / 4 + 64);
        loop {
            let consumed = compress.total_in() as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let status = compress.compress_vec(&text[consumed..], out, flate2::FlushCompress::Sync);
            let done = compress.total_in() as usize == text.len() && out.len() < out.capacity();
            if status.is_err() || done {
                break;
            }
        }
        // A copy of exactly its size: the buffer is kept for the next one.
        (Bytes::copy_from_slice(out), crc)
    }
}

/// Inflates what [`Deflater::pack`] made; keeps its state, made at the
/// first piece that is not only stored blocks, between pieces.
pub struct Inflater(Option<flate2::Decompress>);

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    pub fn new() -> Self {
        Inflater(None)
    }

    /// Appends the `len` bytes of text the piece `deflated` holds to `out`;
    /// false when it does not hold them (`out` then holds what it did).
    pub fn unpack(&mut self, deflated: &[u8], len: usize, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        let end = start + len;
        out.reserve_exact(len);
        if unstore(deflated, len, out) {
            return true;
        }
        out.truncate(start);
        let inflater = self.0.get_or_insert_with(|| flate2::Decompress::new(false));
        inflater.reset(false);
        while out.len() < end {
            let consumed = inflater.total_in() as usize;
            let produced = out.len();
            let rest = deflated.get(consumed..).unwrap_or_default();
            // `out` has room for `len` more bytes only: never past the text.
            let status = inflater.decompress_vec(rest, out, flate2::FlushDecompress::Sync);
            if status.is_err()
                || (out.len() == produced && inflater.total_in() as usize == consumed)
            {
                return false;
            }
        }
        out.len() == end
    }
}

/// Appends the text of `deflated` to `out` if it is only non-final stored
/// blocks (as [`stored`] writes them) holding `len` bytes; false otherwise.
fn unstore(mut deflated: &[u8], len: usize, out: &mut Vec<u8>) -> bool {
    let end = out.len() + len;
    while let [0, a, b, c, d, rest @ ..] = deflated {
        let n = u16::from_le_bytes([*a, *b]);
        if n != !u16::from_le_bytes([*c, *d]) || rest.len() < n as usize {
            return false;
        }
        let (data, rest) = rest.split_at(n as usize);
        out.extend_from_slice(data);
        deflated = rest;
    }
    deflated.is_empty() && out.len() == end
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

/// The text of `deflated` without a copy, when it is one stored block (as
/// [`stored`] writes text shorter than 64 KiB) of `len` bytes.
pub fn stored_text(deflated: &Bytes, len: usize) -> Option<Bytes> {
    let [a, b] = u16::try_from(len).ok()?.to_le_bytes();
    (deflated.len() == len + 5 && deflated.get(..3) == Some(&[0, a, b][..]))
        .then(|| deflated.slice(5..))
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

    #[test]
    fn packed_pieces_unpack_to_their_text() {
        let mut deflater = Deflater::new();
        let mut inflater = Inflater::new();
        let big: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut out = b"kept".to_vec();
        for text in [
            &b""[..],
            b"a{b=\"c\"} 1\n",
            &[b'y'; STORE_BELOW - 1],
            &big,
            &[b'x'; 70_000],
        ] {
            let (deflated, crc) = deflater.pack(text);
            assert_eq!(crc.amount() as usize, text.len());
            let start = out.len();
            assert!(inflater.unpack(&deflated, text.len(), &mut out));
            assert_eq!(&out[start..], text);
        }
        assert!(out.starts_with(b"kept"));
        assert!(inflater.0.is_some(), "long text is compressed");
        let (deflated, _) = deflater.pack(b"some text");
        assert_eq!(
            stored_text(&deflated, 9).as_deref(),
            Some(&b"some text"[..])
        );
        assert_eq!(stored_text(&deflated, 8), None);
        let mut short = Vec::new();
        assert!(!inflater.unpack(&deflated[..deflated.len() / 2], 9, &mut short));
        let (deflated, _) = deflater.pack(&big);
        assert!(!inflater.unpack(&deflated[..deflated.len() / 2], big.len(), &mut short));
    }
}
