//! net-demo (work in progress).
fn main() -> std::process::ExitCode {
    minidock::cli::run_main("net-demo", || anyhow::bail!("not built yet"))
}
