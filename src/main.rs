//! The `flashsale` binary: telemetry, then the CLI. Everything else is in the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLASHSALE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rskafka=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = flashsale::cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(cli.run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
