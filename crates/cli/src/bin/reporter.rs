//! `reporter`: the same as `repovault` invoked as `reporter`.

fn main() -> std::process::ExitCode {
    repovault_cli::roles::run_role("reporter").expect("a known role")
}
