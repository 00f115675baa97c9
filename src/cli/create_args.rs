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

/// A waiting room in front of the sale or campaign (`--queue`): see docs/queue.md.
#[derive(clap::Args)]
#[command(next_help_heading = "Waiting room")]
pub struct Queue {
    /// Put a waiting room in front: reserving (or being issued) then needs the admission it gives.
    #[arg(long)]
    pub queue: bool,
    /// Most users admitted per second, across every instance.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000), requires = "queue")]
    pub admit_per_second: u32,
    /// How long an admission lets its user reserve; unused, it gives its place back.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration, requires = "queue")]
    pub admission_ttl: std::time::Duration,
    /// How long before --starts-at the room opens: joins before the start are drawn in random order.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration, requires = "queue")]
    pub queue_opens_before: std::time::Duration,
    /// A waiting ticket not polled for this long is skipped (joining again goes to the back).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, requires = "queue")]
    pub poll_grace: std::time::Duration,
    /// Ask each join for an ALTCHA proof of work of about N attempts (`GET /v1/queue/challenge`); 0: none.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100_000_000), requires = "queue")]
    pub pow_difficulty: u32,
    /// Where the waiting page (`/wait/sales/ID`) sends a user once admitted, the admission in the fragment.
    #[arg(long, requires = "queue", value_parser = parse_return_url)]
    pub return_url: Option<String>,
}

/// An http(s) URL without a fragment (the page adds its own).
fn parse_return_url(text: &str) -> Result<String, String> {
    let ok = (text.starts_with("https://") || text.starts_with("http://"))
        && !text.contains('#')
        && text.len() <= 2000
        && text.chars().all(|c| c.is_ascii_graphic());
    ok.then(|| text.to_string()).ok_or_else(|| "an http:// or https:// URL without a fragment".into())
}

impl Queue {
    /// The room's settings, None without `--queue`.
    pub fn spec(&self) -> anyhow::Result<Option<crate::scripts::QueueSpec>> {
        if !self.queue {
            return Ok(None);
        }
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        anyhow::ensure!(ms(self.admission_ttl) >= 1_000, "--admission-ttl must be at least 1s");
        anyhow::ensure!(ms(self.poll_grace) >= 3_000, "--poll-grace must be at least 3s");
        Ok(Some(crate::scripts::QueueSpec {
            admit_per_second: self.admit_per_second,
            admission_ttl_ms: ms(self.admission_ttl),
            opens_before_ms: ms(self.queue_opens_before),
            poll_grace_ms: ms(self.poll_grace),
            pow_difficulty: self.pow_difficulty,
            return_url: self.return_url.clone(),
        }))
    }
}

/// Gives a created (or replaced, or loaded) sale or campaign opening at
/// `starts_at` its waiting room, or none, in MySQL and Redis; what the create
/// line says of it.
pub(super) async fn set_up_room(
    ctx: &super::Context,
    room: crate::keys::Room,
    spec: Option<crate::scripts::QueueSpec>,
    starts_at: u64,
) -> anyhow::Result<String> {
    crate::db::queries::put_room(&ctx.mysql, room, spec.as_ref()).await?;
    let opens = starts_at.saturating_sub(spec.as_ref().map_or(0, |q| q.opens_before_ms));
    crate::queue::Queues::new(ctx.redis.clone(), ctx.keys.clone(), ctx.scripts.clone())
        .setup(room, spec.as_ref(), opens)
        .await?;
    Ok(match spec {
        Some(q) => format!(
            ", waiting room (admits {}/s, admissions last {}s, opens {}{})",
            q.admit_per_second,
            q.admission_ttl_ms / 1000,
            crate::time::rfc3339_ms(opens),
            if q.pow_difficulty > 0 {
                format!(", proof of work ~{} attempts", q.pow_difficulty)
            } else {
                String::new()
            }
        ),
        None => String::new(),
    })
}
