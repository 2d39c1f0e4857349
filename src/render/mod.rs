//! What a person or a client reads, rendered in one place: the `/health`
//! entries (JSON, [`health`]), the status page `/` (HTML, [`page`]),
//! `credwatch check`'s report ([`report`], its JSON schema) and its text
//! ([`text`]), with the words for why a credential is pending (`pending`).
//!
//! The domain (`verdict`, `call_paths`) holds data and rules only; these
//! modules turn it into bytes. They use only the domain and the
//! providers' vocabulary, never `state`, `check` or `server`: `state`'s
//! store calls [`health`] when it pre-renders a changed entry, the server
//! hands [`page`] the latest views, and `check` fills in a [`report`] and
//! has [`text`] print it. So `render` sits below all of them (no import
//! cycle). `/metrics` is its own format, written by `metrics` and
//! `call_paths::exposition`.

pub mod health;
pub mod page;
mod pending;
pub mod report;
pub mod text;
