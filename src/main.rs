//! The `roomguard` binary: everything lives in the library; see `roomguard::cli`.

fn main() -> std::process::ExitCode {
    roomguard::cli::main()
}
