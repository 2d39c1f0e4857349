//! One integration-test binary (matklad's advice): scenarios against the
//! real daemon, with only the upstream APIs faked (by `credwatch_sim`).

mod accounts;
mod calibrate;
mod call_paths;
mod check;
mod cli_ops;
mod demo;
mod detection;
mod elevenlabs;
mod endpoints;
mod evidence;
mod example_config;
mod faults;
mod harness;
mod hostile_upstream;
mod labels;
mod metrics_docs;
mod operator_artifacts;
mod prometheus_e2e;
mod reload;
mod rotation;
mod runbook_claims;
mod scale;
mod secrets;
mod server_limits;
mod state_changes;
mod status_page;
mod storm;
mod support;
mod twilio;
mod unfavourable;
mod upstream_safety;
mod web;
