//! The exposition store: the only copy of every credential's `/metrics`
//! lines and `/health` entry, joined per block of [`BLOCK`] credentials and
//! per metric family, with each credential's offsets, and kept only
//! deflated.
//!
//! A probe result replaces that credential's lines in its block (queued,
//! then put in place in batches, and before any read): the block's family
//! is inflated, the lines replaced, and the text deflated again as a piece
//! of a gzip member ([`gzip`]). At 10,000 credentials that is about 1 MB
//! instead of 17 MB of text, and a gzip scrape (Prometheus always asks for
//! gzip) copies the pieces without compressing anything; the member's
//! CRC-32 is combined from the pieces'. A scrape without gzip gets the
//! pieces as [`Chunk::Packed`], inflated one at a time as the answer is
//! written, so it holds one piece of text at a time, not the whole text.
//!
//! The store knows nothing of slots or locks around it: [`crate::state`]
//! owns it behind a `Mutex` and feeds it [`Entry`]s.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use flate2::Crc;

use super::gzip::{self, Deflater, Inflater};
use super::{FAMILY_COUNT, Fragments, header, render_credential};
use crate::verdict::{CredentialState, Health};

/// One credential as the store keeps it.
pub(crate) struct Entry {
    /// Its metric lines.
    pub fragments: Fragments,
    /// Its `/health` entry, a JSON object.
    pub json: String,
    pub health: Option<Health>,
    pub critical: bool,
}

impl Entry {
    /// Renders `state`'s lines and `/health` entry.
    pub(crate) fn of(state: &CredentialState) -> Entry {
        Entry {
            fragments: render_credential(state),
            json: crate::render::health::credential(state),
            health: Some(state.health()),
            critical: state.settings.critical,
        }
    }
}

/// Credentials per block of [`Store`]: small enough that replacing one
/// credential's lines (inflating and deflating its block's family) is
/// cheap, large enough that 10,000 credentials are a few dozen pieces per
/// family and each piece compresses well.
pub(crate) const BLOCK: usize = 128;

/// A piece of a body: text, or deflated text inflated when it is written.
#[derive(Clone, Debug)]
pub(crate) enum Chunk {
    Ready(Bytes),
    /// A [`Part`]'s deflate piece and the length of its text.
    Packed {
        deflated: Bytes,
        len: usize,
    },
}

impl From<Bytes> for Chunk {
    fn from(b: Bytes) -> Self {
        Chunk::Ready(b)
    }
}

thread_local! {
    /// Each thread's inflater for [`Chunk::into_bytes`] (its state is
    /// tens of KiB: kept, not made per piece).
    static INFLATER: RefCell<Option<Inflater>> = const { RefCell::new(None) };
}

impl Chunk {
    /// The length of its text.
    pub(crate) fn len(&self) -> usize {
        match self {
            Chunk::Ready(b) => b.len(),
            Chunk::Packed { len, .. } => *len,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its text. A piece that does not inflate to its length (never: the
    /// store made it) comes out short, so the answer fails its
    /// Content-Length rather than carrying wrong text.
    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            Chunk::Ready(b) => b,
            // One stored block (a small store's pieces): the text without a copy.
            Chunk::Packed { deflated, len } => {
                gzip::stored_text(&deflated, len).unwrap_or_else(|| {
                    let mut out = Vec::new();
                    INFLATER.with_borrow_mut(|inflater| {
                        inflater
                            .get_or_insert_with(Inflater::new)
                            .unpack(&deflated, len, &mut out)
                    });
                    Bytes::from(out)
                })
            }
        }
    }
}

/// The compressor and inflater of a [`Store`], and the buffers they work
/// in: kept, so putting renderings in place allocates only the new pieces.
#[derive(Default)]
struct Codec {
    deflater: Deflater,
    inflater: Inflater,
    /// A part's text as it is.
    old: Vec<u8>,
    /// A part's text with the new items.
    new: Vec<u8>,
}

/// Text joined from the items of one block, kept only deflated (a piece of
/// a gzip member), with each item's end offset.
#[derive(Default)]
struct Part {
    deflated: Bytes,
    /// CRC-32 and length of the text.
    crc: Crc,
    ends: Vec<u32>,
}

impl Part {
    fn join<'a>(items: impl Iterator<Item = &'a [u8]>, codec: &mut Codec) -> Part {
        let text = &mut codec.new;
        text.clear();
        let mut ends = Vec::new();
        for item in items {
            text.extend_from_slice(item);
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        let (deflated, crc) = codec.deflater.pack(text);
        Part {
            deflated,
            crc,
            ends,
        }
    }

    /// The length of the text.
    fn len(&self) -> usize {
        self.ends.last().map_or(0, |&e| e as usize)
    }

    /// Sets `out` to the text.
    fn text_into(&self, inflater: &mut Inflater, out: &mut Vec<u8>) {
        out.clear();
        inflater.unpack(&self.deflated, self.len(), out);
    }

    /// Item `k` of `text` (this part's text).
    fn item<'t>(&self, text: &'t [u8], k: usize) -> &'t [u8] {
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        text.get(start..self.ends[k] as usize).unwrap_or_default()
    }

    fn chunk(&self) -> Chunk {
        Chunk::Packed {
            deflated: self.deflated.clone(),
            len: self.len(),
        }
    }

    /// Replaces the items given (`None`: keep); false if nothing changed.
    /// Afterwards the text is in `codec.new` if it changed, else in `codec.old`.
    fn update(&mut self, new: &[Option<&[u8]>], codec: &mut Codec) -> bool {
        let Codec {
            deflater,
            inflater,
            old,
            new: text,
        } = codec;
        if self.len() == 0 {
            // Most families are empty for most credentials (another
            // provider's families, errors never met): nothing to inflate.
            old.clear();
        } else {
            self.text_into(inflater, old);
        }
        let changed = new
            .iter()
            .enumerate()
            .any(|(k, n)| n.is_some_and(|n| k < self.ends.len() && n != self.item(old, k)));
        if !changed {
            return false;
        }
        text.clear();
        let mut ends = Vec::with_capacity(self.ends.len());
        for k in 0..self.ends.len() {
            let item = new
                .get(k)
                .copied()
                .flatten()
                .unwrap_or_else(|| self.item(old, k));
            text.extend_from_slice(item);
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        let (deflated, crc) = deflater.pack(text);
        *self = Part {
            deflated,
            crc,
            ends,
        };
        true
    }
}

/// A credential's new rendering, waiting to be put in its block.
struct Pending {
    k: usize,
    entry: Entry,
}

/// Renderings a block collects before it is re-joined (or at the next
/// scrape, whichever comes first): re-joining a block inflates and deflates
/// it, so doing it once for many results keeps the work down (the first
/// round changes every credential at once).
const FLUSH_AT: usize = 16;

/// One block of credentials in [`Store`].
#[derive(Default)]
struct Block {
    /// Per family: the block's lines.
    families: Vec<Part>,
    /// `/health` entries; every one but the first starts with a comma.
    health: Part,
    /// The entries of the credentials that are not healthy, comma-separated
    /// (no leading comma): the block's part of the default `/health`.
    brief: Bytes,
    /// Per credential: its health and whether it is critical.
    status: Vec<(Option<Health>, bool)>,
    /// Renderings recorded since the block was last joined.
    queued: Vec<Pending>,
    healthy: usize,
    unhealthy: usize,
    pending: usize,
    ok: bool,
}

impl Block {
    fn build(rendered: &[Entry], codec: &mut Codec) -> Block {
        let families = (0..FAMILY_COUNT)
            .map(|i| {
                Part::join(
                    rendered.iter().map(|e| e.fragments.family(i).as_bytes()),
                    codec,
                )
            })
            .collect();
        let entries: Vec<String> = rendered
            .iter()
            .enumerate()
            .map(|(k, e)| health_item(k, &e.json))
            .collect();
        let health = Part::join(entries.iter().map(|e| e.as_bytes()), codec);
        let mut block = Block {
            families,
            health,
            status: rendered.iter().map(|e| (e.health, e.critical)).collect(),
            ..Block::default()
        };
        block.count();
        block.brief(&codec.new);
        block
    }

    /// Puts the pending renderings in place; returns the families that changed
    /// and whether anything did.
    fn flush(&mut self, codec: &mut Codec) -> (Vec<usize>, bool) {
        if self.queued.is_empty() {
            return (Vec::new(), false);
        }
        let pending = std::mem::take(&mut self.queued);
        let mut by_k: Vec<Option<&Pending>> = vec![None; self.status.len()];
        for p in &pending {
            if let Some(slot) = by_k.get_mut(p.k) {
                *slot = Some(p); // the latest wins
            }
        }
        let mut families = Vec::new();
        for (i, part) in self.families.iter_mut().enumerate() {
            let new: Vec<Option<&[u8]>> = by_k
                .iter()
                .map(|p| p.map(|p| p.entry.fragments.family(i).as_bytes()))
                .collect();
            if part.update(&new, codec) {
                families.push(i);
            }
        }
        let items: Vec<Option<String>> = by_k
            .iter()
            .enumerate()
            .map(|(k, p)| p.map(|p| health_item(k, &p.entry.json)))
            .collect();
        let items: Vec<Option<&[u8]>> = items
            .iter()
            .map(|i| i.as_deref().map(str::as_bytes))
            .collect();
        let health_changed = self.health.update(&items, codec);
        let mut status_changed = false;
        for (status, p) in self.status.iter_mut().zip(&by_k) {
            if let Some(p) = p
                && *status != (p.entry.health, p.entry.critical)
            {
                *status = (p.entry.health, p.entry.critical);
                status_changed = true;
            }
        }
        self.count();
        if health_changed || status_changed {
            // The health text, as `Part::update` left it.
            let text = if health_changed {
                &codec.new
            } else {
                &codec.old
            };
            self.brief(text);
        }
        let changed = !families.is_empty() || health_changed || status_changed;
        (families, changed)
    }

    /// Re-joins the entries of the credentials that are not healthy, from
    /// `text`, the health part's text.
    fn brief(&mut self, text: &[u8]) {
        let mut brief = Vec::new();
        for (k, (health, _)) in self.status.iter().enumerate() {
            if *health == Some(Health::Healthy) || k >= self.health.ends.len() {
                continue;
            }
            let item = self.health.item(text, k);
            let item = if k > 0 {
                item.get(1..).unwrap_or(b"")
            } else {
                item
            };
            if !brief.is_empty() {
                brief.push(b',');
            }
            brief.extend_from_slice(item);
        }
        self.brief = Bytes::from(brief.into_boxed_slice());
    }

    fn count(&mut self) {
        (self.healthy, self.unhealthy, self.pending, self.ok) = (0, 0, 0, true);
        for (health, critical) in &self.status {
            match health {
                Some(Health::Healthy) => self.healthy += 1,
                Some(Health::Unhealthy(_)) => self.unhealthy += 1,
                _ => self.pending += 1,
            }
            if *critical && *health != Some(Health::Healthy) {
                self.ok = false;
            }
        }
    }
}

/// A `/health` entry as stored in its block: with a leading comma unless first.
fn health_item(k: usize, json: &str) -> String {
    if k == 0 {
        json.to_string()
    } else {
        format!(",{json}")
    }
}

/// The only copy of every credential's `/metrics` lines and `/health` entry,
/// by block, plus the bodies assembled from them for the current version.
/// Written by `state::Slot::update`; read by scrapes. Never held while
/// taking a slot's lock.
#[derive(Default)]
pub(crate) struct Store {
    blocks: Vec<Block>,
    codec: Codec,
    /// Bumped by every change; the assembled bodies are for one value of it.
    version: u64,
    gzip: Option<(u64, Bytes, Crc)>,
    /// Per family: CRC-32 and length of all its text, header included
    /// (`None`: recombine at the next gzip scrape).
    family_crc: Vec<Option<Crc>>,
    health: Option<(u64, bool, Arc<[Chunk]>)>,
    /// The default (not verbose) `/health` body.
    health_brief: Option<(u64, bool, Arc<[Chunk]>)>,
}

impl Store {
    /// A store of `entries`, in order (an entry's position is its index).
    pub(crate) fn build(entries: &[Entry]) -> Store {
        let mut codec = Codec::default();
        Store {
            blocks: entries
                .chunks(BLOCK)
                .map(|block| Block::build(block, &mut codec))
                .collect(),
            codec,
            version: 1,
            family_crc: (0..FAMILY_COUNT).map(|_| None).collect(),
            ..Store::default()
        }
    }

    /// Records the credential at `position`'s new lines and entry; they are
    /// put in place before the next read.
    pub(crate) fn set(&mut self, position: usize, entry: Entry) {
        let (b, k) = (position / BLOCK, position % BLOCK);
        let Some(block) = self.blocks.get_mut(b) else {
            return;
        };
        block.queued.push(Pending { k, entry });
        if block.queued.len() >= FLUSH_AT {
            self.flush_block(b);
        }
    }

    fn flush_block(&mut self, b: usize) {
        let Some(block) = self.blocks.get_mut(b) else {
            return;
        };
        let (families, changed) = block.flush(&mut self.codec);
        for i in families {
            self.family_crc[i] = None;
        }
        if changed {
            self.version += 1;
        }
    }

    /// Puts every pending rendering in place.
    fn flush(&mut self) {
        for b in 0..self.blocks.len() {
            if !self.blocks[b].queued.is_empty() {
                self.flush_block(b);
            }
        }
    }

    /// The `/health` entry of the credential at `position`.
    pub(crate) fn health_entry(&mut self, position: usize) -> Option<Bytes> {
        let (b, k) = (position / BLOCK, position % BLOCK);
        self.flush_block(b);
        let part = &self.blocks.get(b)?.health;
        if k >= part.ends.len() {
            return None;
        }
        let Codec { inflater, old, .. } = &mut self.codec;
        part.text_into(inflater, old);
        let item = part.item(old, k);
        let item = if k == 0 { item } else { item.get(1..)? };
        Some(Bytes::copy_from_slice(item))
    }

    fn family_present(&self, i: usize) -> bool {
        self.blocks.iter().any(|b| b.families[i].len() > 0)
    }

    /// The credentials' part of `/metrics`, as chunks (the blocks' pieces,
    /// inflated as they are written).
    pub(crate) fn metrics(&mut self) -> Vec<Chunk> {
        self.flush();
        let mut chunks = Vec::new();
        for i in 0..FAMILY_COUNT {
            if !self.family_present(i) {
                continue;
            }
            chunks.push(Chunk::Ready(header(i).text.clone()));
            for b in &self.blocks {
                let part = &b.families[i];
                if part.len() > 0 {
                    chunks.push(part.chunk());
                }
            }
        }
        chunks
    }

    /// The credentials' part of `/metrics` as the start of a gzip member
    /// (header and deflate pieces), with its CRC-32 and length.
    fn metrics_gzip(&mut self) -> (Bytes, Crc) {
        self.flush();
        if let Some((v, body, crc)) = &self.gzip
            && *v == self.version
        {
            return (body.clone(), copy(crc));
        }
        let len = gzip::GZIP_HEADER.len()
            + (0..FAMILY_COUNT)
                .filter(|&i| self.family_present(i))
                .map(|i| {
                    header(i).deflated.len()
                        + self
                            .blocks
                            .iter()
                            .map(|b| b.families[i].deflated.len())
                            .sum::<usize>()
                })
                .sum::<usize>();
        let mut body = Vec::with_capacity(len);
        body.extend_from_slice(&gzip::GZIP_HEADER);
        let mut crc = Crc::new();
        for i in 0..FAMILY_COUNT {
            if !self.family_present(i) {
                continue;
            }
            let header = header(i);
            body.extend_from_slice(&header.deflated);
            let known = self.family_crc[i].take();
            let mut family = Crc::new();
            if known.is_none() {
                family.combine(&header.crc);
            }
            for b in &self.blocks {
                let part = &b.families[i];
                body.extend_from_slice(&part.deflated);
                if known.is_none() {
                    family.combine(&part.crc);
                }
            }
            let family = known.unwrap_or(family);
            crc.combine(&family);
            self.family_crc[i] = Some(family);
        }
        let body = Bytes::from(body);
        self.gzip = Some((self.version, body.clone(), copy(&crc)));
        (body, crc)
    }

    pub(crate) fn health(&mut self, verbose: bool) -> (bool, Arc<[Chunk]>) {
        self.flush();
        let cached = if verbose {
            &self.health
        } else {
            &self.health_brief
        };
        if let Some((v, ok, chunks)) = cached
            && *v == self.version
        {
            return (*ok, chunks.clone());
        }
        let (mut healthy, mut unhealthy, mut pending, mut ok) = (0, 0, 0, true);
        for b in &self.blocks {
            healthy += b.healthy;
            unhealthy += b.unhealthy;
            pending += b.pending;
            ok &= b.ok;
        }
        let mut chunks = Vec::with_capacity(self.blocks.len() * 2 + 2);
        chunks.push(Chunk::Ready(Bytes::from(format!(
            "{{\"status\":\"{}\",\"healthy\":{healthy},\"unhealthy\":{unhealthy},\"pending\":{pending},\"credentials\":[",
            if ok { "ok" } else { "fail" }
        ))));
        let mut first = true;
        for b in &self.blocks {
            let part = if verbose {
                b.health.chunk()
            } else {
                Chunk::Ready(b.brief.clone())
            };
            if part.is_empty() {
                continue;
            }
            if !first {
                chunks.push(Chunk::Ready(Bytes::from_static(b",")));
            }
            first = false;
            chunks.push(part);
        }
        chunks.push(Chunk::Ready(Bytes::from_static(b"]}\n")));
        let chunks: Arc<[Chunk]> = chunks.into();
        let entry = Some((self.version, ok, chunks.clone()));
        if verbose {
            self.health = entry;
        } else {
            self.health_brief = entry;
        }
        (ok, chunks)
    }
}

/// A copy of `crc` (`flate2::Crc` is not `Clone`).
fn copy(crc: &Crc) -> Crc {
    let mut out = Crc::new();
    out.combine(crc);
    out
}

/// The `/metrics` body as chunks: the credentials' part from `store`
/// (its pieces, inflated as they are written), then `own` (credwatch's own
/// metrics). With `gzip`, the same text as one gzip member (assembled only
/// when something changed since the last gzip scrape).
pub(crate) fn metrics_body(store: &Mutex<Store>, own: String, gzip: bool) -> Vec<Chunk> {
    let mut locked = store.lock().unwrap_or_else(|p| p.into_inner());
    if !gzip {
        let mut chunks = locked.metrics();
        drop(locked);
        chunks.push(Chunk::Ready(Bytes::from(own)));
        return chunks;
    }
    let (compressed, mut crc) = locked.metrics_gzip();
    drop(locked);
    crc.combine(&gzip::crc(own.as_bytes()));
    vec![
        Chunk::Ready(compressed),
        Chunk::Ready(Bytes::from(gzip::stored(own.as_bytes()))),
        Chunk::Ready(Bytes::copy_from_slice(&gzip::gzip_end(&crc))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_replace_items() {
        let mut codec = Codec::default();
        let mut part = Part::join(["a", "bb", "ccc"].iter().map(|s| s.as_bytes()), &mut codec);
        assert!(!part.update(&[None, Some(b"bb"), None], &mut codec));
        assert!(part.update(&[Some(b"xyz"), None, Some(b"")], &mut codec));
        assert_eq!(part.ends, vec![3, 5, 5]);
        assert_eq!(part.chunk().into_bytes(), &b"xyzbb"[..]);
        let mut text = Vec::new();
        part.text_into(&mut codec.inflater, &mut text);
        assert_eq!(part.item(&text, 0), b"xyz");
        assert_eq!(part.item(&text, 2), b"");
        let mut empty = Part::join(["", ""].iter().map(|s| s.as_bytes()), &mut codec);
        assert!(!empty.update(&[Some(b""), None], &mut codec));
        assert!(empty.update(&[None, Some(b"q")], &mut codec));
        assert_eq!(empty.chunk().into_bytes(), &b"q"[..]);
    }
}
