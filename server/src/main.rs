//! `spoke-relay`: the command-line entry point of the hub server.

fn main() {
    eprintln!(
        "spoke-relay {}: the relay server is not part of this build yet; \
         this binary only carries the wire protocol for now",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(1);
}
