//! minidock (work in progress).
fn main() -> std::process::ExitCode {
    minidock::cli::run_main("minidock", || anyhow::bail!("not built yet"))
}
