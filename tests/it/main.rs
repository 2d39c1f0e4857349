//! One integration-test binary (matklad's advice): scenarios against the
//! real daemon, with only the upstream APIs faked (by `credwatch::simulator`).

mod demo;
mod harness;
mod web;
mod server_limits;
