//! The exposition store: the only copy of every credential's `/metrics`
//! lines and `/health` entry, joined per block of [`BLOCK`] credentials and
//! per metric family, with each credential's offsets.
//!
//! A probe result replaces that credential's lines in its block (queued,
//! then put in place in batches, and before any read), and a scrape hands
//! out the blocks as shared buffers. For gzip, a block's family is
//! compressed at the first scrape after it changed, and the member's CRC-32
//! is combined from the pieces'. With 10,000 credentials a scrape copies no
//! credential text and compresses only what changed. Bodies are assembled
//! once per store version.
//!
//! The store knows nothing of slots or locks around it: [`crate::state`]
//! owns it behind a `Mutex` and feeds it [`Entry`]s.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use flate2::Crc;

use super::gzip::{self, Deflater, Segment};
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
/// credential's lines (a copy of its block's family) and re-compressing a
/// block are cheap, large enough that 10,000 credentials are a few dozen
/// chunks per family.
pub(crate) const BLOCK: usize = 128;

/// Text joined from the items of one block, with each item's end offset.
#[derive(Default)]
struct Part {
    text: Bytes,
    ends: Vec<u32>,
}

impl Part {
    fn join<'a>(items: impl Iterator<Item = &'a [u8]> + Clone) -> Part {
        // Sized exactly: `Bytes` keeps a vector's spare capacity for as
        // long as the text lives, and growing by doubling leaves garbage.
        let mut text = Vec::with_capacity(items.clone().map(<[u8]>::len).sum());
        let mut ends = Vec::new();
        for item in items {
            text.extend_from_slice(item);
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        Part {
            text: Bytes::from(text),
            ends,
        }
    }

    fn item(&self, k: usize) -> &[u8] {
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        &self.text[start..self.ends[k] as usize]
    }

    /// Replaces the items given (`None`: keep); false if nothing changed.
    fn update(&mut self, new: &[Option<&[u8]>]) -> bool {
        let changed = new
            .iter()
            .enumerate()
            .any(|(k, n)| n.is_some_and(|n| k < self.ends.len() && n != self.item(k)));
        if !changed {
            return false;
        }
        let item = |k: usize| {
            new.get(k)
                .copied()
                .flatten()
                .unwrap_or_else(|| self.item(k))
        };
        // Sized exactly (see `join`): the text is most of the heap at
        // 10,000 credentials.
        let len = (0..self.ends.len()).map(|k| item(k).len()).sum();
        let mut text = Vec::with_capacity(len);
        let mut ends = Vec::with_capacity(self.ends.len());
        for k in 0..self.ends.len() {
            text.extend_from_slice(item(k));
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        self.text = Bytes::from(text);
        self.ends = ends;
        true
    }
}

/// A credential's new rendering, waiting to be put in its block.
struct Pending {
    k: usize,
    entry: Entry,
}

/// Renderings a block collects before it is re-joined (or at the next
/// scrape, whichever comes first): re-joining a block copies it, so doing it
/// once for many results keeps both the copying and the allocator's
/// fragmentation down (the first round changes every credential at once).
const FLUSH_AT: usize = 16;

/// One block of credentials in [`Store`].
#[derive(Default)]
struct Block {
    /// Per family: the block's lines, and their deflate segment once asked for.
    families: Vec<(Part, Option<Segment>)>,
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
    fn build(rendered: &[Entry]) -> Block {
        let families = (0..FAMILY_COUNT)
            .map(|i| {
                let part = Part::join(rendered.iter().map(|e| e.fragments.family(i).as_bytes()));
                (part, None)
            })
            .collect();
        let entries: Vec<String> = rendered
            .iter()
            .enumerate()
            .map(|(k, e)| health_item(k, &e.json))
            .collect();
        let mut block = Block {
            families,
            health: Part::join(entries.iter().map(|e| e.as_bytes())),
            status: rendered.iter().map(|e| (e.health, e.critical)).collect(),
            ..Block::default()
        };
        block.count();
        block.brief();
        block
    }

    /// Puts the pending renderings in place; returns the families that changed
    /// and whether anything did.
    fn flush(&mut self) -> (Vec<usize>, bool) {
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
        for (i, (part, segment)) in self.families.iter_mut().enumerate() {
            let new: Vec<Option<&[u8]>> = by_k
                .iter()
                .map(|p| p.map(|p| p.entry.fragments.family(i).as_bytes()))
                .collect();
            if part.update(&new) {
                *segment = None;
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
        let mut changed = !families.is_empty() | self.health.update(&items);
        for (status, p) in self.status.iter_mut().zip(&by_k) {
            if let Some(p) = p
                && *status != (p.entry.health, p.entry.critical)
            {
                *status = (p.entry.health, p.entry.critical);
                changed = true;
            }
        }
        self.count();
        if changed {
            self.brief();
        }
        (families, changed)
    }

    /// Re-joins the entries of the credentials that are not healthy.
    fn brief(&mut self) {
        let mut text = Vec::new();
        for (k, (health, _)) in self.status.iter().enumerate() {
            if *health == Some(Health::Healthy) || k >= self.health.ends.len() {
                continue;
            }
            let item = self.health.item(k);
            let item = if k > 0 {
                item.get(1..).unwrap_or(b"")
            } else {
                item
            };
            if !text.is_empty() {
                text.push(b',');
            }
            text.extend_from_slice(item);
        }
        self.brief = Bytes::from(text);
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
    /// Bumped by every change; the assembled bodies are for one value of it.
    version: u64,
    metrics: Option<(u64, Arc<[Bytes]>)>,
    gzip: Option<(u64, Bytes, Crc)>,
    /// Per family: CRC-32 and length of all its text, header included
    /// (`None`: recombine at the next gzip scrape).
    family_crc: Vec<Option<Crc>>,
    health: Option<(u64, bool, Arc<[Bytes]>)>,
    /// The default (not verbose) `/health` body.
    health_brief: Option<(u64, bool, Arc<[Bytes]>)>,
}

impl Store {
    /// A store of `entries`, in order (an entry's position is its index).
    pub(crate) fn build(entries: &[Entry]) -> Store {
        Store {
            blocks: entries.chunks(BLOCK).map(Block::build).collect(),
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
        let (families, changed) = block.flush();
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

    /// The `/health` entry of the credential at `position` (shared, no copy).
    pub(crate) fn health_entry(&mut self, position: usize) -> Option<Bytes> {
        let (b, k) = (position / BLOCK, position % BLOCK);
        self.flush_block(b);
        let part = &self.blocks.get(b)?.health;
        let end = *part.ends.get(k)? as usize;
        let start = if k == 0 {
            0
        } else {
            part.ends[k - 1] as usize + 1
        };
        Some(part.text.slice(start..end))
    }

    fn family_present(&self, i: usize) -> bool {
        self.blocks.iter().any(|b| !b.families[i].0.text.is_empty())
    }

    /// The credentials' part of `/metrics`, as shared chunks.
    pub(crate) fn metrics(&mut self) -> Arc<[Bytes]> {
        self.flush();
        if let Some((v, chunks)) = &self.metrics
            && *v == self.version
        {
            return chunks.clone();
        }
        let mut chunks = Vec::new();
        for i in 0..FAMILY_COUNT {
            if !self.family_present(i) {
                continue;
            }
            chunks.push(header(i).text.clone());
            for b in &self.blocks {
                let text = &b.families[i].0.text;
                if !text.is_empty() {
                    chunks.push(text.clone());
                }
            }
        }
        let chunks: Arc<[Bytes]> = chunks.into();
        self.metrics = Some((self.version, chunks.clone()));
        chunks
    }

    /// The credentials' part of `/metrics` as the start of a gzip member
    /// (header and deflate segments), with its CRC-32 and length.
    fn metrics_gzip(&mut self) -> (Bytes, Crc) {
        self.flush();
        if let Some((v, body, crc)) = &self.gzip
            && *v == self.version
        {
            return (body.clone(), copy(crc));
        }
        let mut body =
            Vec::with_capacity(self.gzip.as_ref().map_or(4096, |(_, b, _)| b.len() + 4096));
        body.extend_from_slice(&gzip::GZIP_HEADER);
        let mut crc = Crc::new();
        // The compressor's state is a few hundred KiB: made when needed, not kept.
        let mut deflater: Option<Deflater> = None;
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
            for b in &mut self.blocks {
                let (part, segment) = &mut b.families[i];
                if part.text.is_empty() {
                    continue;
                }
                let segment = segment.get_or_insert_with(|| {
                    deflater
                        .get_or_insert_with(Deflater::new)
                        .segment(part.text.clone())
                });
                body.extend_from_slice(&segment.deflated);
                if known.is_none() {
                    family.combine(&segment.crc);
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

    pub(crate) fn health(&mut self, verbose: bool) -> (bool, Arc<[Bytes]>) {
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
        chunks.push(Bytes::from(format!(
            "{{\"status\":\"{}\",\"healthy\":{healthy},\"unhealthy\":{unhealthy},\"pending\":{pending},\"credentials\":[",
            if ok { "ok" } else { "fail" }
        )));
        let mut first = true;
        for b in &self.blocks {
            let part = if verbose { &b.health.text } else { &b.brief };
            if part.is_empty() {
                continue;
            }
            if !first {
                chunks.push(Bytes::from_static(b","));
            }
            first = false;
            chunks.push(part.clone());
        }
        chunks.push(Bytes::from_static(b"]}\n"));
        let chunks: Arc<[Bytes]> = chunks.into();
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
/// (shared buffers, assembled only when something changed since the last
/// scrape), then `own` (credwatch's own metrics). With `gzip`, the same
/// text as one gzip member.
pub(crate) fn metrics_body(store: &Mutex<Store>, own: String, gzip: bool) -> Vec<Bytes> {
    let mut locked = store.lock().unwrap_or_else(|p| p.into_inner());
    if !gzip {
        let mut chunks = locked.metrics().to_vec();
        drop(locked);
        chunks.push(Bytes::from(own));
        return chunks;
    }
    let (compressed, mut crc) = locked.metrics_gzip();
    drop(locked);
    crc.combine(&gzip::crc(own.as_bytes()));
    vec![
        compressed,
        Bytes::from(gzip::stored(own.as_bytes())),
        Bytes::copy_from_slice(&gzip::gzip_end(&crc)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_replace_items() {
        let mut part = Part::join(["a", "bb", "ccc"].iter().map(|s| s.as_bytes()));
        assert!(!part.update(&[None, Some(b"bb"), None]));
        assert!(part.update(&[Some(b"xyz"), None, Some(b"")]));
        assert_eq!(&part.text[..], b"xyzbb");
        assert_eq!(part.ends, vec![3, 5, 5]);
        assert_eq!(part.item(2), b"");
    }
}
