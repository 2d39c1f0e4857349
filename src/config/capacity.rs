//! Can the concurrency settings serve the request rate the configuration
//! needs? Every check is a sequence of GETs, and each host serves at most
//! `max_concurrent_requests_per_host` requests at once, so one host serves
//! at most `max_concurrent_requests_per_host / latency` requests a second.
//! The configuration needs `Σ requests per cycle ÷ interval` of its
//! credentials on that host ([`crate::providers::request_rate`]).
//! `validate` and start-up warn when the need exceeds what the cap serves
//! at [`ASSUMED_LATENCY`] per answer, a typical figure for these APIs.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::providers::{Credential, http::host_key, request_rate};

/// The answer time the capacity estimate assumes (ElevenLabs and Twilio
/// answer in 100–300 ms).
pub const ASSUMED_LATENCY: Duration = Duration::from_millis(250);

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
            let needed = (h.required * latency.as_secs_f64()).ceil() as usize;
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
