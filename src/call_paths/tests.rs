//! The readiness rule: proven now, link by link.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::*;
use crate::outcome::Reason;

const GRACE: Duration = Duration::from_secs(600);

fn path(destinations: &[&str]) -> CallPath {
    CallPath {
        name: "sales".into(),
        caller: "el".into(),
        agent_id: "agent_1".into(),
        phone_number_id: "phnum_1".into(),
        carrier: "tw".into(),
        destinations: destinations.iter().map(|d| d.to_string()).collect(),
        critical: true,
        imported_fingerprint: None,
        labels: Default::default(),
    }
}

fn healthy() -> Credentials {
    Credentials {
        caller: Some(Health::Healthy),
        convai_write: Some(true),
        convai_write_basis: Some(crate::outcome::Basis::Inferred),
        carrier: Some(Health::Healthy),
    }
}

fn look(link: Link, finding: Finding) -> Observation {
    Observation::new(link, finding, Evidence::default())
}

fn all_proven(destinations: &[&str]) -> Vec<Observation> {
    let mut v = vec![
        look(Link::Agent, Finding::Proven),
        look(Link::PhoneNumber, Finding::Proven),
        look(Link::CarrierNumber, Finding::Proven),
        look(Link::ImportCurrent, Finding::Proven),
    ];
    v.extend(
        destinations
            .iter()
            .map(|d| look(Link::Destination(d.to_string()), Finding::Proven)),
    );
    v
}

fn problems(s: &PathState, now: Instant) -> Vec<LinkProblem> {
    s.links(now)
        .iter()
        .filter_map(|l| l.status.problem())
        .collect()
}

#[test]
fn nothing_is_ready_before_every_link_is_proven() {
    let t0 = Instant::now();
    let mut s = PathState::new(path(&["US"]), GRACE);
    assert!(!s.ready(t0), "no look yet");
    assert_eq!(
        problems(&s, t0).len(),
        8,
        "every link unknown: {:?}",
        problems(&s, t0)
    );
    s.record(all_proven(&["US"]), t0, SystemTime::UNIX_EPOCH);
    assert!(!s.ready(t0), "the credentials have no verdict yet");
    assert_eq!(
        problems(&s, t0),
        [
            LinkProblem::ElevenlabsCredentialUnknown,
            LinkProblem::ConvaiWriteUnknown,
            LinkProblem::TwilioCredentialUnknown
        ]
    );
    s.credentials = healthy();
    assert!(s.ready(t0));
}

#[test]
fn a_broken_credential_breaks_the_path_at_once() {
    let t0 = Instant::now();
    let mut s = PathState::new(path(&[]), GRACE);
    s.record(all_proven(&[]), t0, SystemTime::UNIX_EPOCH);
    s.credentials = healthy();
    assert!(s.ready(t0));
    s.credentials.carrier = Some(Health::Unhealthy(Reason::InvalidCredentials));
    assert_eq!(problems(&s, t0), [LinkProblem::TwilioCredentialUnhealthy]);
    s.credentials = healthy();
    s.credentials.convai_write = Some(false);
    assert_eq!(problems(&s, t0), [LinkProblem::ConvaiWriteMissing]);
}

#[test]
fn a_transient_fault_keeps_the_proof_for_the_grace_then_the_link_is_unknown() {
    let t0 = Instant::now();
    let mut s = PathState::new(path(&["GB"]), GRACE);
    s.credentials = healthy();
    s.record(all_proven(&["GB"]), t0, SystemTime::UNIX_EPOCH);
    let gb = || Link::Destination("GB".into());
    // One look without an answer: still proven.
    let t1 = t0 + GRACE;
    s.record(
        vec![look(gb(), Finding::Unknown(Reason::UpstreamError))],
        t1,
        SystemTime::UNIX_EPOCH,
    );
    assert!(s.ready(t1), "a transient fault never flips a proven path");
    assert!(s.ready(t1 + GRACE - Duration::from_secs(1)));
    // Unknown for the whole grace: no longer proven.
    assert!(!s.ready(t1 + GRACE));
    assert_eq!(problems(&s, t1 + GRACE), [LinkProblem::DestinationUnknown]);
    // A definitive answer ends the episode.
    let t2 = t1 + GRACE + Duration::from_secs(5);
    s.record(
        vec![look(gb(), Finding::Proven)],
        t2,
        SystemTime::UNIX_EPOCH,
    );
    assert!(
        s.ready(t2 + GRACE * 3),
        "proven again, and no look has failed since"
    );
}

#[test]
fn a_definitive_break_stays_broken_through_faults_until_proven_again() {
    let t0 = Instant::now();
    let mut s = PathState::new(path(&[]), GRACE);
    s.credentials = healthy();
    s.record(all_proven(&[]), t0, SystemTime::UNIX_EPOCH);
    s.record(
        vec![look(
            Link::Agent,
            Finding::Broken(LinkProblem::AgentNotFound),
        )],
        t0,
        SystemTime::UNIX_EPOCH,
    );
    s.record(
        vec![look(Link::Agent, Finding::Unknown(Reason::Timeout))],
        t0 + GRACE * 5,
        SystemTime::UNIX_EPOCH,
    );
    assert_eq!(problems(&s, t0 + GRACE * 5), [LinkProblem::AgentNotFound]);
    s.record(
        vec![look(Link::Agent, Finding::Proven)],
        t0 + GRACE * 6,
        SystemTime::UNIX_EPOCH,
    );
    assert!(s.ready(t0 + GRACE * 6));
}

#[test]
fn a_reload_keeps_what_is_known_of_the_links_that_stay() {
    let t0 = Instant::now();
    let mut s = PathState::new(path(&["US", "GB"]), GRACE);
    s.credentials = healthy();
    s.record(all_proven(&["US", "GB"]), t0, SystemTime::UNIX_EPOCH);
    s.reconfigure(path(&["US", "DE"]), GRACE);
    assert_eq!(
        problems(&s, t0),
        [LinkProblem::DestinationUnknown],
        "DE never looked at"
    );
    let mut other = path(&["US", "DE"]);
    other.agent_id = "agent_2".into();
    s.reconfigure(other, GRACE);
    assert_eq!(
        problems(&s, t0),
        [LinkProblem::AgentUnknown, LinkProblem::DestinationUnknown],
        "another agent is not proven by the old one's answer"
    );
}
