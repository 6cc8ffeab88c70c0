//! `receiver`: the same as `repovault` invoked as `receiver`.

fn main() -> std::process::ExitCode {
    repovault_cli::roles::run_role("receiver").expect("a known role")
}
