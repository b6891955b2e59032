//! Ctrl-C and SIGTERM for blocking code: a thread waits for the signal and
//! runs a callback, so a command can cancel a stream or a UI can quit cleanly.

/// Runs `then` once when the process is asked to stop (SIGINT or SIGTERM).
pub fn on_interrupt(name: &str, then: impl FnOnce() + Send + 'static) {
    let _ = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(spoke_relay::server::shutdown_signal());
            then();
        });
}
