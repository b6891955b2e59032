//! The `spoke` binary.

fn main() -> std::process::ExitCode {
    spoke::cli::main()
}
