//! overlay-demo (work in progress).
fn main() -> std::process::ExitCode {
    minidock::cli::run_main("overlay-demo", || anyhow::bail!("not built yet"))
}
