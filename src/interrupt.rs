//! Ctrl-C and SIGTERM during a campaign: the first signal asks the campaign
//! to stop starting runs and to report what it has (exit code 130); a
//! second one exits at once.
//!
//! The handler only stores to an atomic (or removes the temporaries being
//! written and calls `_exit`), all async-signal-safe. The state is
//! process-wide by nature: signals are.

use std::sync::atomic::{AtomicU32, Ordering};

static SIGNALS: AtomicU32 = AtomicU32::new(0);

/// Exit code of an interrupted command (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: u8 = exactsim_model::report::Verdict::Interrupted.exit_code();

#[cfg(unix)]
extern "C" fn on_signal(_sig: libc::c_int) {
    if SIGNALS.fetch_add(1, Ordering::SeqCst) >= 1 {
        // The second signal: the user does not want to wait for the report.
        // A report being written stays unwritten, and so does its hidden
        // temporary.
        crate::artifacts::remove_temps_now();
        unsafe { libc::_exit(EXIT_INTERRUPTED as libc::c_int) };
    }
}

/// Install the handler for SIGINT and SIGTERM.
pub fn install() {
    #[cfg(unix)]
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Has a stop been requested?
pub fn requested() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}
