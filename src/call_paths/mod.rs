//! Call paths: the outbound call the application places (`agent_id`,
//! `agent_phone_number_id`, the ElevenLabs key that places it, the Twilio
//! account that owns the number, the countries it dials), proven link by
//! link.
//!
//! The links that are credentials take their credential's verdict as it is
//! now (never re-asked); the others are looked at every `detail_interval`
//! by the providers (`providers::check_call_path`, into
//! [`Observation`]s). [`PathState::links`] is the one readiness rule: a
//! path is ready only when every link is proven now. A link whose last look
//! got no answer keeps its last proof for the path's grace (its caller's
//! `detail_interval`) from the first failed look, then is unknown: a
//! transient fault never flips a proven path, and a long silence never
//! stays green.
//!
//! Pure data and rules, like `verdict`: no locks, no I/O. `state` holds a
//! [`PathState`] per path and re-renders it when its links or its
//! credentials change; `exposition` writes its metric lines, `report` its
//! part of `check`'s report (its `/health` entry and text are
//! [`crate::render`]'s).

pub mod config;
pub mod exposition;
pub mod report;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::outcome::{Basis, Evidence, Reason};
pub use crate::providers::link::{CallPath, Finding, Link, LinkProblem, Observation};
use crate::verdict::Health;

/// What a path's credential links are now, from their credentials' state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Credentials {
    pub caller: Option<Health>,
    /// `permissions["convai_write"]` of the caller.
    pub convai_write: Option<bool>,
    /// What that verdict rests on.
    pub convai_write_basis: Option<Basis>,
    pub carrier: Option<Health>,
}

/// What is known of one link looked at with a request.
#[derive(Debug, Clone)]
struct Looked {
    /// The last definitive finding (`Proven` or `Broken`).
    definitive: Option<Finding>,
    /// Since when the looks have got no answer (`None` after a definitive
    /// one), on the monotonic clock.
    unknown_since: Option<Instant>,
    /// The last look, whatever it found.
    last: Observation,
}

/// One link as the path sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkView {
    pub link: Link,
    pub status: Status,
    /// The request and answer it rests on (none for credential links).
    pub evidence: Option<Evidence>,
    pub info: Option<String>,
    /// The finding is an inference (worded as such).
    pub inferred: bool,
    /// The last look got no answer (why), while the link keeps its last proof.
    pub last_failure: Option<Reason>,
}

/// A link's status now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Proven,
    Broken(LinkProblem),
    Unknown(LinkProblem),
}

impl Status {
    pub fn problem(self) -> Option<LinkProblem> {
        match self {
            Status::Proven => None,
            Status::Broken(p) | Status::Unknown(p) => Some(p),
        }
    }
}

/// What is known of one call path.
#[derive(Debug, Clone)]
pub struct PathState {
    pub path: CallPath,
    /// How long a link stays proven while its looks get no answer.
    pub grace: Duration,
    pub credentials: Credentials,
    looked: BTreeMap<Link, Looked>,
    /// When the last cycle of looks ended (wall clock, for the metric).
    pub checked_at: Option<SystemTime>,
}

impl PathState {
    pub fn new(path: CallPath, grace: Duration) -> Self {
        PathState {
            path,
            grace,
            credentials: Credentials::default(),
            looked: BTreeMap::new(),
            checked_at: None,
        }
    }

    /// New settings (a reload): what is known of links still in the path stays.
    pub fn reconfigure(&mut self, path: CallPath, grace: Duration) {
        let links = request_links(&path);
        self.looked.retain(|l, _| links.contains(l));
        if path.agent_id != self.path.agent_id {
            self.looked.remove(&Link::Agent);
        }
        if path.phone_number_id != self.path.phone_number_id
            || path.caller != self.path.caller
            || path.carrier != self.path.carrier
        {
            self.looked.clear();
        }
        self.path = path;
        self.grace = grace;
    }

    /// Records one cycle of looks, made at `now` (`wall` on the wall clock).
    pub fn record(&mut self, observations: Vec<Observation>, now: Instant, wall: SystemTime) {
        for o in observations {
            let entry = self.looked.entry(o.link.clone());
            let looked = entry.or_insert_with(|| Looked {
                definitive: None,
                unknown_since: None,
                last: o.clone(),
            });
            match &o.finding {
                Finding::Proven | Finding::Broken(_) => {
                    looked.definitive = Some(o.finding.clone());
                    looked.unknown_since = None;
                }
                Finding::Unknown(_) => {
                    looked.unknown_since.get_or_insert(now);
                }
            }
            looked.last = o;
        }
        self.checked_at = Some(wall);
    }

    /// Every link in order, with its status at `now`: the one readiness rule.
    pub fn links(&self, now: Instant) -> Vec<LinkView> {
        let c = &self.credentials;
        let credential = |link: Link, health: Option<Health>, broken: LinkProblem| LinkView {
            status: match health {
                Some(Health::Healthy) => Status::Proven,
                Some(Health::Unhealthy(_)) => Status::Broken(broken),
                Some(Health::Pending) | None => Status::Unknown(link.unknown()),
            },
            link,
            evidence: None,
            info: match health {
                Some(Health::Unhealthy(r)) => Some(r.as_str().to_string()),
                _ => None,
            },
            inferred: false,
            last_failure: None,
        };
        let mut out = vec![
            credential(
                Link::CallerCredential,
                c.caller,
                LinkProblem::ElevenlabsCredentialUnhealthy,
            ),
            LinkView {
                status: match c.convai_write {
                    Some(true) => Status::Proven,
                    Some(false) => Status::Broken(LinkProblem::ConvaiWriteMissing),
                    None => Status::Unknown(LinkProblem::ConvaiWriteUnknown),
                },
                link: Link::ConvaiWrite,
                evidence: None,
                info: None,
                // Until `credwatch calibrate` proves the probe on the account,
                // a granted `convai_write` rests on the order seen on a
                // sibling request (evidence-addendum.md).
                inferred: c.convai_write.is_some() && c.convai_write_basis == Some(Basis::Inferred),
                last_failure: None,
            },
        ];
        for link in request_links(&self.path) {
            if link == Link::CarrierNumber {
                out.push(credential(
                    Link::CarrierCredential,
                    c.carrier,
                    LinkProblem::TwilioCredentialUnhealthy,
                ));
            }
            out.push(self.looked_view(link, now));
        }
        out
    }

    fn looked_view(&self, link: Link, now: Instant) -> LinkView {
        let Some(l) = self.looked.get(&link) else {
            return LinkView {
                status: Status::Unknown(link.unknown()),
                link,
                evidence: None,
                info: None,
                inferred: false,
                last_failure: None,
            };
        };
        let stale = l
            .unknown_since
            .is_some_and(|t| now.saturating_duration_since(t) >= self.grace);
        let status = match &l.definitive {
            Some(Finding::Broken(p)) => Status::Broken(*p),
            Some(Finding::Proven) if !stale => Status::Proven,
            _ => Status::Unknown(link.unknown()),
        };
        LinkView {
            status,
            evidence: Some(l.last.evidence.clone()),
            info: l.last.info.clone(),
            inferred: l.last.inferred,
            last_failure: match l.last.finding {
                Finding::Unknown(r) => Some(r),
                _ => None,
            },
            link,
        }
    }

    /// Ready: every link proven at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.links(now).iter().all(|l| l.status == Status::Proven)
    }
}

/// The links looked at with a request, in order.
fn request_links(path: &CallPath) -> Vec<Link> {
    let mut links = vec![
        Link::Agent,
        Link::PhoneNumber,
        Link::CarrierNumber,
        Link::ImportCurrent,
    ];
    links.extend(path.destinations.iter().cloned().map(Link::Destination));
    links
}

#[cfg(test)]
mod tests;
