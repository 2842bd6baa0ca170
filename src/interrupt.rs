//! Ctrl-C and SIGTERM during a campaign: the first signal asks the campaign
//! to stop starting runs and to report what it has (exit code 130); a
//! second one exits at once. Real mode is patient ([`install_patient`]): its
//! runs own processes and a PostgreSQL server that an exit at once would
//! leave behind, so the second signal only says it is cleaning up (which
//! takes a second or two) and a third one exits at once.
//!
//! The handler only stores to an atomic (or removes the temporaries being
//! written and calls `_exit`), all async-signal-safe. The state is
//! process-wide by nature: signals are.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

static SIGNALS: AtomicU32 = AtomicU32::new(0);
/// Set by [`install_patient`].
static PATIENT: AtomicBool = AtomicBool::new(false);

/// Exit code of an interrupted command (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: u8 = exactsim_model::report::Verdict::Interrupted.exit_code();

#[cfg(unix)]
extern "C" fn on_signal(_sig: libc::c_int) {
    let before = SIGNALS.fetch_add(1, Ordering::SeqCst);
    if before == 1 && PATIENT.load(Ordering::SeqCst) {
        const MSG: &[u8] = b"\nstopping: the run's processes and servers are being stopped and its files removed; \
                              a third signal exits at once and leaves them to the next run\n";
        // SAFETY: write(2) is async-signal-safe; a static buffer.
        unsafe { libc::write(2, MSG.as_ptr().cast(), MSG.len()) };
        return;
    }
    if before >= 1 {
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

/// Install the handler for a command that owns processes (real mode): a
/// second signal does not exit at once (see the module's comment).
pub fn install_patient() {
    PATIENT.store(true, Ordering::SeqCst);
    install();
}

/// Has a stop been requested?
pub fn requested() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}
