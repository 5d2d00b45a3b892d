//! cgroup-demo (work in progress).
fn main() -> std::process::ExitCode {
    minidock::cli::run_main("cgroup-demo", || anyhow::bail!("not built yet"))
}
