//! ns-demo (work in progress).
fn main() -> std::process::ExitCode {
    minidock::cli::run_main("ns-demo", || anyhow::bail!("not built yet"))
}
