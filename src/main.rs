//! The `flashsale` binary: telemetry, then the CLI. Everything else is in the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    let cli = flashsale::cli::Cli::parse();
    tracing_subscriber::fmt().with_env_filter(cli.global.log_filter()).with_writer(std::io::stderr).init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(cli.run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// glibc gives threads their own malloc arenas, up to eight per core, and
/// memory a thread frees stays in its arena. Memory the pipe's thread frees
/// would then stay out of reach of the HTTP workers' connection buffers. One
/// arena per core instead: holding 10,000 connections took 162 MiB instead
/// of 172 MiB, at the same throughput (docs/benchmarks.md). `MALLOC_ARENA_MAX`,
/// when set, wins. Runs before any other thread exists.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SAFETY: mallopt only sets an allocator parameter; no other thread runs yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, cores.clamp(1, 64) as libc::c_int);
        }
    }
}
