//! The `kith` binary: hands the process's arguments, environment and streams to the CLI.

/// Bulk imports and GraphQL responses allocate many small, short-lived values; mimalloc
/// serves them at a fraction of the glibc allocator's cost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let stdin = std::io::stdin();
    let mut stdin = stdin.lock();
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let io = kith_core::cli::Io { stdin: &mut stdin, stdout: &mut stdout, stderr: &mut stderr };
    std::process::ExitCode::from(kith_core::cli::main(std::env::args_os(), env, io).await)
}
