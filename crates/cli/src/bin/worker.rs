//! `worker`: the same as `repovault` invoked as `worker`.

fn main() -> std::process::ExitCode {
    repovault_cli::roles::run_role("worker").expect("a known role")
}
