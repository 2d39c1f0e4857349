//! `credwatch demo`: the daemon against the built-in simulator.
use std::net::SocketAddr;
use std::process::ExitCode;

pub async fn run(_listen: SocketAddr) -> ExitCode {
    ExitCode::from(1)
}
