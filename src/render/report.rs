//! `credwatch check`'s report: what `check --output json` writes (a
//! stable interface, `version: 2`, docs/check-output.md) and what
//! [`super::text`] renders for people. `check` fills it in.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::call_paths::report::CallPathReport;
use crate::outcome::{Basis, Evidence, Reason};
use crate::providers::{self, report::Finding};

#[derive(Debug, Clone, Serialize)]
pub struct CredentialReport {
    pub name: String,
    pub provider: &'static str,
    pub critical: bool,
    /// The credential's `labels:` (routing labels on `credwatch_credential_info`).
    pub labels: crate::section::Labels,
    /// `healthy`, `unhealthy` or `pending` (no definitive answer).
    pub status: &'static str,
    pub reason: Option<Reason>,
    /// Why there is no verdict, while `status` is `pending` (the same
    /// object as `/health`'s `pending`).
    pub pending: Option<super::health::PendingJson>,
    pub valid: Option<bool>,
    pub fingerprint: String,
    pub permissions: BTreeMap<String, bool>,
    /// What each verdict in `permissions` rests on: `direct`, `calibrated`
    /// or `inferred` (docs/check-output.md).
    pub permission_basis: BTreeMap<String, Basis>,
    /// The provider's own fields (`quota`, `phone_numbers`, `twilio_account`,
    /// …), in an object whose shape `provider` says (version 2).
    pub details: providers::Reports,
    pub findings: Vec<Finding>,
    /// Every request made, with what came back.
    pub evidence: Vec<Evidence>,
    #[serde(skip)]
    pub(crate) ready_for_calls: bool,
}

impl CredentialReport {
    /// [`CredentialState::ready_for_calls`], the rule's one home.
    pub fn ok(&self) -> bool {
        self.ready_for_calls
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Output format version; bumped only on incompatible changes.
    pub version: u32,
    pub ok: bool,
    pub credentials: Vec<CredentialReport>,
    /// Every (or the one) call path, after its credentials were checked.
    pub call_paths: Vec<CallPathReport>,
}
