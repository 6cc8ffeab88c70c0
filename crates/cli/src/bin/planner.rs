//! `planner`: the same as `repovault` invoked as `planner`.

fn main() -> std::process::ExitCode {
    repovault_cli::roles::run_role("planner").expect("a known role")
}
