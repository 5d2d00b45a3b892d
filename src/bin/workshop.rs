//! workshop (work in progress).
fn main() -> std::process::ExitCode {
    minidock::cli::run_main("workshop", || anyhow::bail!("not built yet"))
}
