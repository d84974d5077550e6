//! `kith` for tests that need a process of their own (the log and the tracer are set up once
//! per process): the same CLI as core's binary, which `CARGO_BIN_EXE_kith-child` finds.

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
