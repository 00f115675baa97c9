//! Flags `coupon create` and `sale create` share: the window and what to do
//! when the id exists.

use crate::time::{now_ms, parse_time_ms};

/// When the campaign or sale is open.
#[derive(clap::Args)]
pub struct Window {
    /// Opening time, RFC 3339 or seconds since the epoch (default: now).
    #[arg(long, value_parser = parse_time_ms)]
    starts_at: Option<u64>,
    /// Closing time, RFC 3339 or seconds since the epoch (default: never).
    #[arg(long, value_parser = parse_time_ms)]
    ends_at: Option<u64>,
}

impl Window {
    /// (starts_at, ends_at) in ms; ends_at 0 = never.
    pub fn resolve(&self) -> anyhow::Result<(u64, u64)> {
        let starts_at = self.starts_at.unwrap_or_else(now_ms);
        let ends_at = self.ends_at.unwrap_or(0);
        anyhow::ensure!(ends_at == 0 || ends_at > starts_at, "--ends-at must be after --starts-at");
        Ok((starts_at, ends_at))
    }
}

/// What to do when the id already exists (default: fail).
#[derive(clap::Args)]
pub struct Existing {
    /// Reset the existing one: new stock, nothing issued or ordered, its MySQL rows deleted.
    #[arg(long, conflicts_with = "if_absent")]
    pub replace: bool,
    /// Leave the existing one as it is and succeed.
    #[arg(long)]
    pub if_absent: bool,
}
