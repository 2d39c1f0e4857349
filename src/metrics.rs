//! Prometheus text exposition.
//!
//! Each credential's lines are rendered when its state changes
//! ([`render_credential`], called by [`crate::state`]) into one
//! [`Fragments`] string, family after family. A scrape only concatenates:
//! [`crate::state`] keeps the fragments of blocks of credentials joined per
//! family (and, for scrapers that accept gzip, compressed per family), and
//! rebuilds a block only when one of its credentials changed. Values come
//! from background checks; every HELP text says so. Unknown values are
//! absent, never a made-up 0 or -1.
//!
//! gzip: the body is one gzip member whose deflate stream is a concatenation
//! of independently compressed, byte-aligned (sync-flushed, never final)
//! segments, one per block and family, then credwatch's own metrics as
//! stored blocks, then an empty final block. The CRC-32 of the whole is
//! combined from the segments' CRCs ([`crc32_combine`]), so a scrape never
//! reads or compresses text that did not change.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

use crate::outcome::Reason;
use crate::state::{CredentialState, Health, State};

/// A metric family: name, type and help.
pub struct Family {
    pub name: &'static str,
    pub kind: &'static str,
    pub help: &'static str,
}

const BG: &str = "(from the background check, not measured at scrape time)";

macro_rules! families {
    ($($id:ident = $name:literal, $kind:literal, $help:literal;)*) => {
        /// Index of each family in [`FAMILIES`] and in [`Fragments`].
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy)]
        pub enum F { $($id),* }
        pub const FAMILIES: &[Family] = &[$(Family { name: $name, kind: $kind, help: $help }),*];
    };
}

/// How many metric families a credential can have.
pub const FAMILY_COUNT: usize = FAMILIES.len();

families! {
    Valid = "credwatch_credential_valid", "gauge",
        "1 if upstream accepted the credential at the last definitive check, 0 if it rejected it; absent before the first definitive answer";
    Healthy = "credwatch_credential_healthy", "gauge",
        "1 if the credential is valid, holds every required permission and its account is usable (what /health reports); 0 otherwise, including before the first verdict";
    ProblemInfo = "credwatch_credential_problem_info", "gauge",
        "Why the credential is unhealthy, as a stable reason label; present only while it is";
    Info = "credwatch_credential_info", "gauge",
        "Static facts about a configured credential; critical=\"true\" means it counts for /health";
    Permission = "credwatch_permission_granted", "gauge",
        "1 if the required permission is granted, 0 if upstream said it is missing; absent while unknown";
    ProbeInconclusive = "credwatch_permission_probe_inconclusive", "gauge",
        "1 while the last answer to this permission's probe was neither granted nor missing (the probe needs credwatch calibrate), 0 after a conclusive answer; absent before the first answer";
    CheckSuccess = "credwatch_check_success", "gauge",
        "1 if the last attempt of this check got a definitive answer from upstream, 0 if it failed (timeout, 5xx, 429, unexpected answer)";
    CheckDuration = "credwatch_check_duration_seconds", "gauge",
        "Duration of the last attempt of this check";
    CheckInterval = "credwatch_check_interval_seconds", "gauge",
        "Configured interval of the credential's authentication check";
    LastCheck = "credwatch_last_check_timestamp_seconds", "gauge",
        "Unix time the authentication check last finished, answered or not";
    LastSuccess = "credwatch_last_success_timestamp_seconds", "gauge",
        "Unix time the authentication check last got a definitive answer";
    Checks = "credwatch_checks_total", "counter",
        "Check attempts, answered or not; with credwatch_check_errors_total an error ratio";
    CheckErrors = "credwatch_check_errors_total", "counter",
        "Check attempts that failed or found a problem, by stable reason; a series appears at its first error";
    ElUsed = "credwatch_elevenlabs_characters_used", "gauge",
        "Characters (credits) used in the current billing period, account-wide";
    ElLimit = "credwatch_elevenlabs_characters_limit", "gauge",
        "Character (credit) limit of the current billing period";
    ElCeiling = "credwatch_elevenlabs_characters_ceiling", "gauge",
        "Characters (credits) at which the quota is used up: the limit plus what usage-based billing may add; absent when the extension is unlimited";
    ElReset = "credwatch_elevenlabs_characters_reset_timestamp_seconds", "gauge",
        "Unix time of the next character-count reset";
    ElSubscription = "credwatch_elevenlabs_subscription_info", "gauge",
        "ElevenLabs subscription tier and status (past_due and incomplete: billing at risk; free_disabled: disabled)";
    ElOpenInvoices = "credwatch_elevenlabs_open_invoices", "gauge",
        "1 if the ElevenLabs subscription has open invoices, 0 if not; absent when upstream does not say";
    TwNumbers = "credwatch_twilio_phone_numbers", "gauge",
        "Incoming phone numbers on the Twilio account (counted at the detail interval)";
    TwBalance = "credwatch_twilio_balance", "gauge",
        "Twilio account balance in its currency";
    TwAccount = "credwatch_twilio_account_info", "gauge",
        "Twilio account status (active, suspended, closed) and type (Trial, Full)";
    Fingerprint = "credwatch_credential_fingerprint_info", "gauge",
        "First 12 hex digits of the SHA-256 of the secret in use; changes when the secret is rotated";
    Changed = "credwatch_credential_changed_timestamp_seconds", "gauge",
        "Unix time credwatch saw the secret change while running; absent until it does";
    PhoneReady = "credwatch_elevenlabs_phone_number_ready", "gauge",
        "1 if the imported Twilio number can place outbound calls as far as credwatch can tell, 0 if a problem was found";
    PhoneProblemInfo = "credwatch_elevenlabs_phone_number_problem_info", "gauge",
        "A problem found with an imported Twilio number, by stable problem label";
    PhoneProblem = "credwatch_elevenlabs_phone_number_problem", "gauge",
        "Deprecated: the same series as credwatch_elevenlabs_phone_number_problem_info, under its old name";
}

/// Escapes a label value for the text format.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Formats a sample value the way Prometheus parses it.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

struct Out {
    families: Vec<String>,
    base: String,
}

impl Out {
    fn sample(&mut self, f: F, extra: &[(&str, &str)], v: f64) {
        let s = &mut self.families[f as usize];
        s.push_str(FAMILIES[f as usize].name);
        s.push('{');
        s.push_str(&self.base);
        for (k, val) in extra {
            let _ = write!(s, ",{k}=\"{}\"", escape(val));
        }
        let _ = writeln!(s, "}} {}", value(v));
    }
}

/// One credential's lines: every family's, one after another in
/// [`FAMILIES`] order, in one allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fragments {
    text: Box<str>,
    /// Where each family's lines end in `text` (they start where the previous family's end).
    ends: [u32; FAMILY_COUNT],
}

impl Fragments {
    /// The lines of family `i` (empty when it has none).
    pub fn family(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// Every line, family after family.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// All lines of one credential.
pub fn render_credential(s: &CredentialState) -> Fragments {
    let families = render_families(s);
    let mut text = String::with_capacity(families.iter().map(String::len).sum());
    let mut ends = [0u32; FAMILY_COUNT];
    for (i, f) in families.iter().enumerate() {
        text.push_str(f);
        ends[i] = u32::try_from(text.len()).unwrap_or(u32::MAX);
    }
    Fragments {
        text: text.into_boxed_str(),
        ends,
    }
}

fn render_families(s: &CredentialState) -> Vec<String> {
    let mut out = Out {
        families: vec![String::new(); FAMILIES.len()],
        base: format!(
            "provider=\"{}\",credential=\"{}\"",
            s.provider.as_str(),
            escape(&s.name)
        ),
    };
    let v = &s.verdict;
    if let Some(valid) = v.valid {
        out.sample(F::Valid, &[], if valid { 1.0 } else { 0.0 });
    }
    let health = s.health();
    out.sample(
        F::Healthy,
        &[],
        if health == Health::Healthy { 1.0 } else { 0.0 },
    );
    if let Health::Unhealthy(reason) = health {
        out.sample(F::ProblemInfo, &[("reason", reason.as_str())], 1.0);
    }
    out.sample(
        F::Info,
        &[(
            "critical",
            if s.settings.critical { "true" } else { "false" },
        )],
        1.0,
    );
    for p in &s.settings.required_permissions {
        if let Some(granted) = v.permissions.get(p) {
            out.sample(
                F::Permission,
                &[("permission", p)],
                if *granted { 1.0 } else { 0.0 },
            );
        }
    }
    for p in &s.settings.required_permissions {
        let check = s
            .checks
            .iter()
            .find(|(name, _)| name.strip_prefix("permission_") == Some(p.as_str()));
        if let Some(inconclusive) = check.and_then(|(_, c)| c.inconclusive) {
            out.sample(
                F::ProbeInconclusive,
                &[("permission", p)],
                if inconclusive { 1.0 } else { 0.0 },
            );
        }
    }
    for (name, check) in &s.checks {
        out.sample(
            F::CheckSuccess,
            &[("check", name)],
            if check.success { 1.0 } else { 0.0 },
        );
        out.sample(
            F::CheckDuration,
            &[("check", name)],
            check.duration.as_secs_f64(),
        );
        out.sample(F::Checks, &[("check", name)], check.attempts as f64);
        for (reason, n) in &check.errors {
            out.sample(
                F::CheckErrors,
                &[("check", name), ("reason", reason.as_str())],
                *n as f64,
            );
        }
    }
    out.sample(F::CheckInterval, &[], s.settings.interval.as_secs_f64());
    if let Some(t) = s.last_check {
        out.sample(F::LastCheck, &[], seconds(t));
    }
    if let Some(t) = s.last_success {
        out.sample(F::LastSuccess, &[], seconds(t));
    }
    if let Some(q) = &v.quota {
        out.sample(F::ElUsed, &[], q.used as f64);
        out.sample(F::ElLimit, &[], q.limit as f64);
        if let Some(ceiling) = q.ceiling {
            out.sample(F::ElCeiling, &[], ceiling as f64);
        }
        if let Some(reset) = q.reset_at {
            out.sample(F::ElReset, &[], reset as f64);
        }
        out.sample(
            F::ElSubscription,
            &[("tier", &q.tier), ("status", &q.status)],
            1.0,
        );
        if let Some(open) = q.open_invoices {
            out.sample(F::ElOpenInvoices, &[], if open { 1.0 } else { 0.0 });
        }
    }
    if let Some(n) = v.twilio_numbers {
        out.sample(F::TwNumbers, &[], n as f64);
    }
    if let Some(b) = &v.twilio_balance {
        out.sample(F::TwBalance, &[("currency", &b.currency)], b.amount);
    }
    if let Some(a) = &v.twilio_account {
        out.sample(
            F::TwAccount,
            &[("status", &a.status), ("type", &a.kind)],
            1.0,
        );
    }
    for n in v.phone_numbers.iter().flatten() {
        let mut labels: Vec<(&str, &str)> = vec![("phone_number_id", &n.phone_number_id)];
        if s.settings.expose_numbers {
            labels.push(("number", &n.number));
        }
        out.sample(F::PhoneReady, &labels, if n.ready() { 1.0 } else { 0.0 });
        for p in &n.problems {
            let mut l = labels.clone();
            l.push(("problem", p.as_str()));
            out.sample(F::PhoneProblemInfo, &l, 1.0);
            out.sample(F::PhoneProblem, &l, 1.0);
        }
    }
    out.sample(F::Fingerprint, &[("fingerprint", &s.fingerprint)], 1.0);
    if let Some(t) = s.changed_at {
        out.sample(F::Changed, &[], seconds(t));
    }
    out.families
}

/// The `# HELP` and `# TYPE` lines of family `i`, rendered once.
pub fn header(i: usize) -> &'static Segment {
    static HEADERS: OnceLock<Vec<Segment>> = OnceLock::new();
    let headers = HEADERS.get_or_init(|| {
        let mut deflater = Deflater::new();
        FAMILIES
            .iter()
            .map(|family| {
                let mut text = Vec::new();
                let _ = write_header(&mut text, family);
                deflater.segment(Bytes::from(text))
            })
            .collect()
    });
    &headers[i]
}

fn write_header(out: &mut Vec<u8>, family: &Family) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(out, "# HELP {} {} {BG}.", family.name, family.help)?;
    writeln!(out, "# TYPE {} {}", family.name, family.kind)
}

/// Some text, and the same text as a piece of a deflate stream.
#[derive(Debug, Clone, Default)]
pub struct Segment {
    pub text: Bytes,
    /// Raw deflate, byte-aligned, never final: segments concatenate.
    pub deflated: Bytes,
    /// CRC-32 of `text`.
    pub crc: u32,
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
        let mut crc = flate2::Crc::new();
        crc.update(&text);
        if text.is_empty() {
            return Segment {
                text,
                deflated: Bytes::new(),
                crc: crc.sum(),
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
        Segment {
            text,
            deflated: Bytes::from(out),
            crc: crc.sum(),
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
/// the gzip trailer for `crc` and `len` uncompressed bytes.
pub fn gzip_end(crc: u32, len: u64) -> [u8; 10] {
    let mut end = [0u8; 10];
    end[0] = 0x03;
    end[2..6].copy_from_slice(&crc.to_le_bytes());
    end[6..10].copy_from_slice(&(len as u32).to_le_bytes());
    end
}

const CRC_POLY: u32 = 0xedb8_8320;

/// a(x) * b(x) modulo the CRC-32 polynomial (reflected), as in zlib.
const fn multmodp(a: u32, mut b: u32) -> u32 {
    if a == 0 {
        return 0;
    }
    let mut m: u32 = 1 << 31;
    let mut p: u32 = 0;
    loop {
        if a & m != 0 {
            p ^= b;
            if a & (m - 1) == 0 {
                break;
            }
        }
        m >>= 1;
        b = if b & 1 != 0 {
            (b >> 1) ^ CRC_POLY
        } else {
            b >> 1
        };
    }
    p
}

/// x^(2^k) modulo the CRC-32 polynomial, for k in 0..32.
const X2N: [u32; 32] = {
    let mut table = [0u32; 32];
    let mut p: u32 = 1 << 30; // x^1
    table[0] = p;
    let mut n = 1;
    while n < 32 {
        p = multmodp(p, p);
        table[n] = p;
        n += 1;
    }
    table
};

/// The CRC-32 of A followed by B, from CRC(A), CRC(B) and B's length
/// (zlib's `crc32_combine`, in O(log len)).
pub fn crc32_combine(crc_a: u32, crc_b: u32, len_b: u64) -> u32 {
    // x^(8 * len_b): one byte is 8 bits, i.e. start at k = 3.
    let mut p: u32 = 1 << 31;
    let mut n = len_b;
    let mut k = 3;
    while n != 0 {
        if n & 1 != 0 {
            p = multmodp(X2N[k & 31], p);
        }
        n >>= 1;
        k += 1;
    }
    multmodp(p, crc_a) ^ crc_b
}

/// credwatch's own metrics: build, reload, upstream requests, process.
pub struct SelfMetrics {
    registry: Registry,
    /// The process collector reads several `/proc` files; its text is
    /// reused for up to [`PROCESS_METRICS_MAX_AGE`], so a flood of scrapes
    /// does not turn into a flood of `/proc` reads.
    process: Registry,
    process_text: std::sync::Mutex<Option<(std::time::Instant, String)>>,
    pub upstream_requests: IntCounterVec,
}

/// How old the `process_*` samples in a scrape may be.
pub const PROCESS_METRICS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(1);

impl SelfMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let upstream_requests = IntCounterVec::new(
            Opts::new(
                "credwatch_upstream_requests_total",
                "Requests credwatch sent upstream (all of them GET), by provider.",
            ),
            &["provider"],
        )
        .expect("static metric definition is valid");
        let _ = registry.register(Box::new(upstream_requests.clone()));
        let process = Registry::new();
        #[cfg(target_os = "linux")]
        {
            let _ = process.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ));
        }
        SelfMetrics {
            registry,
            process,
            process_text: std::sync::Mutex::new(None),
            upstream_requests,
        }
    }
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The families [`render_self`] can write, besides the `process_*` ones of
/// the `prometheus` crate's process collector. With [`FAMILIES`], every
/// family credwatch can export; `docs/metrics.md` documents exactly these
/// (tested).
pub const SELF_FAMILIES: &[&str] = &[
    "credwatch_build_info",
    "credwatch_config_last_reload_successful",
    "credwatch_config_last_reload_success_timestamp_seconds",
    "credwatch_runtime_alive_tasks",
    "credwatch_upstream_requests_total",
    // Only with --web.config.file.
    "credwatch_web_config_last_reload_successful",
    "credwatch_web_config_last_reload_success_timestamp_seconds",
];

/// Renders build info, reload state, upstream request counts and process metrics.
pub fn render_self(state: &State) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# HELP credwatch_build_info Version and revision of the running credwatch."
    );
    let _ = writeln!(s, "# TYPE credwatch_build_info gauge");
    let _ = writeln!(
        s,
        "credwatch_build_info{{version=\"{}\",revision=\"{}\"}} 1",
        escape(crate::VERSION),
        escape(crate::REVISION)
    );
    let (ok, at) = state.reload_result();
    let _ = writeln!(
        s,
        "# HELP credwatch_config_last_reload_successful 1 if the last configuration load or reload succeeded."
    );
    let _ = writeln!(s, "# TYPE credwatch_config_last_reload_successful gauge");
    let _ = writeln!(
        s,
        "credwatch_config_last_reload_successful {}",
        if ok { 1 } else { 0 }
    );
    if let Some(at) = at {
        let _ = writeln!(
            s,
            "# HELP credwatch_config_last_reload_success_timestamp_seconds Unix time of the last successful configuration load or reload."
        );
        let _ = writeln!(
            s,
            "# TYPE credwatch_config_last_reload_success_timestamp_seconds gauge"
        );
        let _ = writeln!(
            s,
            "credwatch_config_last_reload_success_timestamp_seconds {}",
            value(seconds(at))
        );
    }
    if let Some(web) = state.web_config() {
        let (ok, at) = web.last_reload();
        let _ = writeln!(
            s,
            "# HELP credwatch_web_config_last_reload_successful 1 if the last re-read of the web config (--web.config.file) was applied; 0 if it was invalid or would have changed the security mode."
        );
        let _ = writeln!(
            s,
            "# TYPE credwatch_web_config_last_reload_successful gauge"
        );
        let _ = writeln!(
            s,
            "credwatch_web_config_last_reload_successful {}",
            if ok { 1 } else { 0 }
        );
        if let Some(at) = at {
            let _ = writeln!(
                s,
                "# HELP credwatch_web_config_last_reload_success_timestamp_seconds Unix time of the last successful web config load or re-read."
            );
            let _ = writeln!(
                s,
                "# TYPE credwatch_web_config_last_reload_success_timestamp_seconds gauge"
            );
            let _ = writeln!(
                s,
                "credwatch_web_config_last_reload_success_timestamp_seconds {}",
                value(seconds(at))
            );
        }
    }
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let _ = writeln!(
            s,
            "# HELP credwatch_runtime_alive_tasks Tasks alive in credwatch's async runtime (probes in flight, connections, background loops)."
        );
        let _ = writeln!(s, "# TYPE credwatch_runtime_alive_tasks gauge");
        let _ = writeln!(
            s,
            "credwatch_runtime_alive_tasks {}",
            handle.metrics().num_alive_tasks()
        );
    }
    let own = &state.self_metrics;
    let mut buf = Vec::new();
    if TextEncoder::new()
        .encode(&own.registry.gather(), &mut buf)
        .is_ok()
    {
        s.push_str(&String::from_utf8_lossy(&buf));
    }
    // The process families sort after `credwatch_*`, as one registry would.
    let mut cached = own.process_text.lock().unwrap_or_else(|p| p.into_inner());
    let fresh = cached
        .as_ref()
        .is_some_and(|(at, _)| at.elapsed() < PROCESS_METRICS_MAX_AGE);
    if !fresh {
        let mut buf = Vec::new();
        let text = match TextEncoder::new().encode(&own.process.gather(), &mut buf) {
            Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
            Err(_) => String::new(),
        };
        *cached = Some((std::time::Instant::now(), text));
    }
    if let Some((_, text)) = cached.as_ref() {
        s.push_str(text);
    }
    s
}

/// Every reason label value, for documentation and tests.
pub fn reasons() -> impl Iterator<Item = &'static str> {
    Reason::ALL.iter().map(|r| r.as_str())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn crc(data: &[u8]) -> u32 {
        let mut c = flate2::Crc::new();
        c.update(data);
        c.sum()
    }

    #[test]
    fn crc32_combine_matches_the_crc_of_the_concatenation() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for split in [0, 1, 2, 3, 100, 2047, 4999, 5000] {
            let (a, b) = data.split_at(split);
            assert_eq!(
                crc32_combine(crc(a), crc(b), b.len() as u64),
                crc(&data),
                "split {split}"
            );
        }
    }

    #[test]
    fn segments_stored_blocks_and_end_make_one_gzip_member() {
        let parts: [&[u8]; 4] = [b"# HELP a\n", b"", &[b'x'; 70_000], b"a{b=\"c\"} 1\n"];
        let mut deflater = Deflater::new();
        let mut gz = GZIP_HEADER.to_vec();
        let (mut crc_all, mut len) = (0u32, 0u64);
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
            crc_all = crc32_combine(crc_all, crc(part), part.len() as u64);
            len += part.len() as u64;
            text.extend_from_slice(part);
        }
        gz.extend_from_slice(&gzip_end(crc_all, len));
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, text);
    }

    #[test]
    fn fragments_split_by_family() {
        let text = "ab".to_string();
        let mut ends = [2u32; FAMILY_COUNT];
        ends[0] = 1;
        let f = Fragments {
            text: text.into_boxed_str(),
            ends,
        };
        assert_eq!(f.family(0), "a");
        assert_eq!(f.family(1), "b");
        assert_eq!(f.family(2), "");
    }
}
