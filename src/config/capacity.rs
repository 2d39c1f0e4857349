//! Can the concurrency settings serve the request rate the configuration
//! needs? Every check is a sequence of GETs, and each host serves at most
//! `max_concurrent_requests_per_host` requests at once, so one host serves
//! at most `max_concurrent_requests_per_host / latency` requests a second.
//! The configuration needs `Σ requests per cycle ÷ interval` of its
//! credentials on that host ([`crate::providers::request_rate`]).
//! Unset, the cap is sized to the need ([`sized`]); `validate` and start-up
//! warn when the need exceeds what the cap serves at [`ASSUMED_LATENCY`]
//! per answer, a typical figure for these APIs.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::providers::{Credential, http::host_key, request_rate};

/// The answer time the capacity estimate assumes (ElevenLabs and Twilio
/// answer in 100–300 ms).
pub const ASSUMED_LATENCY: Duration = Duration::from_millis(250);

/// The answer time the default of `max_concurrent_requests_per_host` is
/// sized for (the slow end of what these APIs answer in).
pub const SIZING_LATENCY: Duration = Duration::from_millis(300);
/// Headroom on top of the need: answers vary, and retries after a backoff
/// come on top.
const HEADROOM: f64 = 1.25;
/// The sized default never exceeds this many requests at once per host.
pub const MAX_SIZED: usize = 256;

/// `max_concurrent_requests_per_host` when the config leaves it unset:
/// enough for the busiest host's need at [`SIZING_LATENCY`], with
/// headroom, up to [`MAX_SIZED`]. (The caller keeps at least the default.)
pub fn sized(credentials: &[Credential]) -> usize {
    estimate(credentials, 1, SIZING_LATENCY)
        .iter()
        .map(|h| whole(h.required * SIZING_LATENCY.as_secs_f64() * HEADROOM))
        .max()
        .unwrap_or(0)
        .min(MAX_SIZED)
}

/// Rounded up, ignoring the last bits of floating-point error.
fn whole(x: f64) -> usize {
    (x - 1e-9).ceil().max(0.0) as usize
}

/// The estimate for one upstream host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostLoad {
    /// Scheme, host and port.
    pub host: String,
    pub credentials: usize,
    /// Requests a second the configuration needs there.
    pub required: f64,
    /// Requests a second the cap serves at `latency`.
    pub capacity: f64,
}

/// Every host's need against its capacity at `latency`.
pub fn estimate(credentials: &[Credential], per_host: usize, latency: Duration) -> Vec<HostLoad> {
    let mut hosts: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for c in credentials {
        let e = hosts.entry(host_key(c.base_url())).or_default();
        e.0 += 1;
        e.1 += request_rate(c);
    }
    let capacity = per_host as f64 / latency.as_secs_f64().max(0.001);
    hosts
        .into_iter()
        .map(|(host, (credentials, required))| HostLoad {
            host,
            credentials,
            required,
            capacity,
        })
        .collect()
}

/// The warnings for the hosts whose need exceeds the cap's capacity.
pub fn warnings(credentials: &[Credential], per_host: usize) -> Vec<String> {
    let latency = ASSUMED_LATENCY;
    estimate(credentials, per_host, latency)
        .into_iter()
        .filter(|h| h.required > h.capacity)
        .map(|h| {
            let needed = whole(h.required * latency.as_secs_f64());
            format!(
                "the {} credential(s) on {} need about {:.0} requests/s; {per_host} request(s) at once serve at most {:.0}/s at {} ms per answer, so checks will run late: raise max_concurrent_requests_per_host to at least {needed}, or lengthen `interval`",
                h.credentials,
                h.host,
                h.required,
                h.capacity,
                latency.as_millis()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn keys(n: usize, base_url: &str, interval: &str) -> String {
        let mut y = format!("defaults:\n  interval: {interval}\n  timeout: 5s\nelevenlabs:\n");
        for i in 0..n {
            y += &format!("  - name: k{i}\n    api_key: sk_{i:048}\n    base_url: {base_url}\n");
        }
        y
    }

    fn load(yaml: &str) -> Config {
        let env: std::collections::HashMap<String, String> = Default::default();
        Config::from_yaml(yaml, std::path::Path::new("c.yaml"), &env).expect("valid")
    }

    #[test]
    fn unset_the_cap_is_sized_to_the_work_and_explicit_values_are_kept() {
        // 10 keys: 2 requests a minute each, far below 16 at once.
        assert_eq!(
            load(&keys(10, "https://api.elevenlabs.io", "60s")).max_concurrent_requests_per_host,
            16
        );
        // 10,000 keys at 60 s: 333 requests/s, × 0.3 s × 1.25 = 125 at once.
        let big = load(&keys(10_000, "https://api.elevenlabs.io", "60s"));
        assert_eq!(big.max_concurrent_requests_per_host, 125);
        assert!(big.warnings.is_empty(), "{:?}", big.warnings);
        // Spelled three ways, one host: the need adds up.
        let mut y = keys(0, "", "60s");
        for (i, url) in [
            "https://api.elevenlabs.io",
            "https://API.elevenlabs.io/",
            "https://Api.ElevenLabs.IO",
        ]
        .iter()
        .cycle()
        .take(6000)
        .enumerate()
        {
            y += &format!("  - name: k{i}\n    api_key: sk_{i:048}\n    base_url: {url}\n");
        }
        assert_eq!(load(&y).max_concurrent_requests_per_host, 75);
        // Set by hand: kept, and a warning says it is too few.
        let y = format!(
            "max_concurrent_requests_per_host: 16\n{}",
            keys(10_000, "https://api.elevenlabs.io", "60s")
        );
        let c = load(&y);
        assert_eq!(c.max_concurrent_requests_per_host, 16);
        let w: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("need about 333 requests/s"), "{}", w[0]);
        assert!(w[0].contains("at least 84"), "{}", w[0]);
    }
}
