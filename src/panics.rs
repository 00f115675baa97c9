//! Panics: one process-wide hook that counts every panic in
//! `flashsale_panics_total` and logs it through tracing at error level, then
//! hands over to the hook that was installed before it (so the default
//! backtrace is still printed).
//!
//! A panic is always a bug: no input may cause one. The counter makes a panic
//! that something caught (the router answers it as a 500, tokio would end the
//! task) visible to monitoring and to the tests, which assert it never moves.

use std::sync::{atomic::Ordering::Relaxed, Once};

use crate::metrics::METRICS;

static INSTALL: Once = Once::new();

/// Installs the hook; later calls do nothing (several services may start in
/// one process, as in the tests).
pub fn install_hook() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            METRICS.panics.fetch_add(1, Relaxed);
            let thread = std::thread::current();
            tracing::error!(thread = thread.name().unwrap_or("unnamed"), "panic: {info}");
            previous(info);
        }));
    });
}
