//! One connection's outbound side: the wire bytes waiting for its socket.
//!
//! Over plain TCP the hub's fan-out thread writes straight into the socket
//! with a non-blocking write, so a live batch reaches a member without
//! waking that member's task; only what the socket does not take is queued,
//! and the connection's task writes it when the socket is writable again.
//! Over TLS every frame is queued and the connection's task writes it.
//! Writes are serialised by the queue's lock, so frames never interleave.

use bytes::Bytes;
use std::collections::VecDeque;
use std::io::ErrorKind;
use std::sync::{Mutex, MutexGuard};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

/// Why a connection can no longer be written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Its queue passed the limit: the member reads slower than the hub writes.
    Slow,
    /// The socket failed.
    Io(String),
}

pub struct Outbound {
    state: Mutex<State>,
    /// Wakes the connection's task: something is queued, or it failed.
    pub wake: Notify,
    /// The socket, when the fan-out may write to it directly.
    direct: Option<OwnedWriteHalf>,
    max_frames: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Bytes>,
    queued_bytes: usize,
    /// The front of the queue is the rest of a frame partly written: it must
    /// go out before anything else, or the stream is torn.
    front_started: bool,
    /// Live frames held back while the connection sends the log.
    held: Option<Vec<(Option<u64>, Bytes)>>,
    held_bytes: usize,
    /// The last seq this connection has been given.
    delivered: u64,
    failed: Option<Failure>,
    /// Ending: live frames are no longer taken.
    closing: bool,
}

impl Outbound {
    pub fn new(direct: Option<OwnedWriteHalf>, max_frames: usize, max_bytes: usize) -> Self {
        Outbound {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            direct,
            max_frames: max_frames.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue torn (every
        // change is a push or a pop), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends a frame of the connection's own (a reply, the log).
    pub fn send(&self, bytes: Bytes) {
        let mut st = self.lock();
        if st.failed.is_some() {
            return;
        }
        let wake = self.write_or_queue(&mut st, bytes);
        drop(st);
        if wake {
            self.wake.notify_one();
        }
    }

    /// Offers a live frame whose ops end at `last` (`None`: presence, which
    /// has no seq). Returns whether it was taken: not when the connection
    /// already has those ops, is ending or has failed.
    pub fn live(&self, last: Option<u64>, bytes: &Bytes) -> bool {
        let mut st = self.lock();
        if st.failed.is_some() || st.closing {
            return false;
        }
        if let Some(last) = last {
            if last <= st.delivered {
                return false;
            }
            st.delivered = last;
        }
        let wake = if let Some(held) = st.held.as_mut() {
            held.push((last, bytes.clone()));
            let frames = held.len();
            st.held_bytes += bytes.len();
            if frames > self.max_frames || st.held_bytes > self.max_bytes {
                self.fail(&mut st, Failure::Slow)
            } else {
                false
            }
        } else {
            self.write_or_queue(&mut st, bytes.clone())
        };
        drop(st);
        if wake {
            self.wake.notify_one();
        }
        true
    }

    /// Starts holding live frames back (while the log is sent).
    pub fn hold(&self) {
        let mut st = self.lock();
        if st.held.is_none() {
            st.held = Some(Vec::new());
        }
    }

    /// Stops holding: the log up to `sent` has been sent, so held frames
    /// with nothing newer are dropped and the rest go out in order.
    pub fn release(&self, sent: u64) {
        let mut st = self.lock();
        let Some(held) = st.held.take() else { return };
        st.held_bytes = 0;
        st.delivered = st.delivered.max(sent);
        let mut wake = false;
        for (last, bytes) in held {
            if st.failed.is_some() {
                break;
            }
            if last.is_none_or(|l| l > sent) {
                wake |= self.write_or_queue(&mut st, bytes);
            }
        }
        drop(st);
        if wake {
            self.wake.notify_one();
        }
    }

    /// Why writing failed, if it did.
    pub fn failure(&self) -> Option<Failure> {
        self.lock().failed.clone()
    }

    /// Takes no more live frames and forgets what is queued (but the rest of
    /// a frame partly written), so the final error and close reach the
    /// member next.
    pub fn close_for_goodbye(&self) {
        let mut st = self.lock();
        st.closing = true;
        st.held = None;
        st.held_bytes = 0;
        Self::forget_queued(&mut st);
        st.failed = None;
    }

    /// Everything queued, for a connection that writes it itself (TLS).
    pub fn take_queued(&self) -> Vec<Bytes> {
        let mut st = self.lock();
        st.queued_bytes = 0;
        st.front_started = false;
        st.queue.drain(..).collect()
    }

    /// Writes the queue into the socket (direct connections), waiting for it
    /// to become writable as needed. Returns when the queue is empty.
    pub async fn flush_direct(&self) -> Result<(), Failure> {
        let Some(socket) = &self.direct else {
            return Ok(());
        };
        loop {
            {
                let mut st = self.lock();
                if let Some(f) = &st.failed {
                    return Err(f.clone());
                }
                if !self.drain(&mut st, socket) {
                    if let Some(f) = &st.failed {
                        return Err(f.clone());
                    }
                    return Ok(());
                }
            }
            // Also wake when the fan-out gives up on this connection, so a
            // member that stopped reading is noticed while its socket is full.
            tokio::select! {
                writable = socket.writable() => writable.map_err(|e| Failure::Io(e.to_string()))?,
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Writes queued frames until the queue is empty (false) or the socket
    /// is full (true).
    fn drain(&self, st: &mut State, socket: &OwnedWriteHalf) -> bool {
        while let Some(front) = st.queue.front_mut() {
            match socket.try_write(front) {
                Ok(n) if n == front.len() => {
                    st.queued_bytes -= n;
                    st.queue.pop_front();
                    st.front_started = false;
                }
                Ok(n) => {
                    st.queued_bytes -= n;
                    let rest = front.slice(n..);
                    *front = rest;
                    st.front_started = n > 0 || st.front_started;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(st, Failure::Io(e.to_string()));
                    return false;
                }
            }
        }
        false
    }

    /// Writes `bytes` now if nothing is waiting and the socket takes it,
    /// else queues it. Returns whether the connection's task must be woken.
    fn write_or_queue(&self, st: &mut State, bytes: Bytes) -> bool {
        let mut bytes = bytes;
        if let Some(socket) = self.direct.as_ref().filter(|_| st.queue.is_empty()) {
            match socket.try_write(&bytes) {
                Ok(n) if n == bytes.len() => return false,
                Ok(n) => {
                    bytes = bytes.slice(n..);
                    st.front_started = n > 0;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.fail(st, Failure::Io(e.to_string())),
            }
        }
        st.queued_bytes += bytes.len();
        st.queue.push_back(bytes);
        if st.queue.len() > self.max_frames || st.queued_bytes > self.max_bytes {
            return self.fail(st, Failure::Slow);
        }
        true
    }

    fn fail(&self, st: &mut State, why: Failure) -> bool {
        if st.failed.is_none() {
            st.failed = Some(why);
        }
        Self::forget_queued(st);
        st.held = None;
        st.held_bytes = 0;
        true
    }

    /// Drops the queue, except the rest of a frame already partly written.
    fn forget_queued(st: &mut State) {
        let started = st.queue.pop_front().filter(|_| st.front_started);
        st.queue.clear();
        st.queued_bytes = 0;
        if let Some(rest) = started {
            st.queued_bytes = rest.len();
            st.queue.push_back(rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn held_frames_keep_their_order_and_skip_what_the_log_covered() {
        let out = Outbound::new(None, 100, 1 << 20);
        out.hold();
        assert!(out.live(Some(3), &b("ops..3")));
        assert!(out.live(None, &b("presence")));
        assert!(out.live(Some(5), &b("ops4..5")));
        assert!(!out.live(Some(5), &b("again")), "a batch is given once");
        out.send(b("log..4"));
        out.release(4);
        assert_eq!(
            out.take_queued(),
            vec![b("log..4"), b("presence"), b("ops4..5")]
        );
        assert!(!out.live(Some(2), &b("old")));
    }

    #[test]
    fn a_queue_over_its_limit_fails_as_slow_and_then_takes_nothing() {
        let out = Outbound::new(None, 3, 1 << 20);
        for i in 1..=3 {
            assert!(out.live(Some(i), &b("x")));
        }
        assert_eq!(out.failure(), None);
        out.live(Some(4), &b("x"));
        assert_eq!(out.failure(), Some(Failure::Slow));
        assert!(out.take_queued().is_empty(), "a failed queue is dropped");
        assert!(!out.live(Some(5), &b("x")));
        out.close_for_goodbye();
        out.send(b("error"));
        assert_eq!(out.take_queued(), vec![b("error")]);
        assert!(!out.live(Some(6), &b("x")), "no live frames after goodbye");
    }

    #[test]
    fn the_byte_limit_counts_too() {
        let out = Outbound::new(None, 100, 10);
        out.send(b("0123456789"));
        assert_eq!(out.failure(), None);
        out.send(b("a"));
        assert_eq!(out.failure(), Some(Failure::Slow));

        // Held frames count as well.
        let out = Outbound::new(None, 100, 10);
        out.hold();
        out.live(Some(1), &b("0123456789"));
        assert_eq!(out.failure(), None);
        out.live(Some(2), &b("a"));
        assert_eq!(out.failure(), Some(Failure::Slow));
    }

    #[tokio::test]
    async fn a_slow_socket_keeps_the_partly_written_frame_whole_and_then_says_goodbye() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_read, write) = server.into_split();
        let out = Outbound::new(Some(write), 2, 64 << 20);

        // More than the socket buffers take: written in part, the rest queued.
        let big = Bytes::from(vec![7u8; 16 << 20]);
        out.send(big.clone());
        for seq in 1..=3 {
            out.live(Some(seq), &b("live"));
        }
        assert_eq!(out.failure(), Some(Failure::Slow));

        out.close_for_goodbye();
        out.send(b("bye"));
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.map(|_| got)
        });
        out.flush_direct()
            .await
            .expect("the queue drains once the member reads");
        drop(out);
        let got = reading.await.unwrap().unwrap();
        assert_eq!(
            got.len(),
            big.len() + 3,
            "the whole first frame, then the goodbye"
        );
        assert!(got[..big.len()].iter().all(|&x| x == 7));
        assert_eq!(&got[big.len()..], b"bye");
    }
}
