//! What a person or a client reads, rendered in one place: the `/health`
//! entries (JSON, [`health`]), the status page `/` (HTML, [`page`]) and
//! `credwatch check`'s text ([`text`]), with the words for why a
//! credential is pending (`pending`).
//!
//! The domain (`verdict`, `call_paths`) holds data and rules only; these
//! modules turn it into bytes. Layering inside: [`health`] and `pending`
//! use only the domain, so `state`'s store calls them when it pre-renders a
//! changed entry; [`page`] and [`text`] sit above `state` and `check`.
//! `/metrics` is its own format, written by `metrics` and
//! `call_paths::exposition`.

pub mod health;
pub mod page;
mod pending;
pub mod text;
