//! The `credwatch` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    credwatch::cli::main()
}
