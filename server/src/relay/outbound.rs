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
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
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

/// The bytes waiting for every member's socket together, against a cap.
/// While the total is over the cap, a member holding more than its share
/// of it (the cap over the members) is dropped as slow at its next frame:
/// it resumes from its cursor, and members that keep up are never the ones
/// to pay for one that does not.
#[derive(Debug)]
pub struct QueueBudget {
    cap: usize,
    total: AtomicUsize,
    members: AtomicUsize,
}

impl QueueBudget {
    pub fn new(cap: usize) -> Arc<QueueBudget> {
        Arc::new(QueueBudget {
            cap: cap.max(1),
            total: AtomicUsize::new(0),
            members: AtomicUsize::new(0),
        })
    }

    /// Bytes queued or held for every member right now.
    pub fn queued(&self) -> usize {
        self.total.load(Relaxed)
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    fn over_share(&self, mine: usize) -> bool {
        self.total.load(Relaxed) > self.cap && mine > self.cap / self.members.load(Relaxed).max(1)
    }
}

pub struct Outbound {
    state: Mutex<State>,
    budget: Arc<QueueBudget>,
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
    /// `queued_bytes + held_bytes` as last added to the shared budget.
    accounted: usize,
    /// The last seq this connection has been given.
    delivered: u64,
    failed: Option<Failure>,
    /// Ending: live frames are no longer taken.
    closing: bool,
}

impl Outbound {
    pub fn new(
        direct: Option<OwnedWriteHalf>,
        max_frames: usize,
        max_bytes: usize,
        budget: Arc<QueueBudget>,
    ) -> Self {
        budget.members.fetch_add(1, Relaxed);
        Outbound {
            state: Mutex::new(State::default()),
            budget,
            wake: Notify::new(),
            direct,
            max_frames: max_frames.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    /// Brings the shared total up to date with this connection's bytes.
    fn settle(&self, st: &mut State) {
        let now = st.queued_bytes + st.held_bytes;
        if now >= st.accounted {
            self.budget.total.fetch_add(now - st.accounted, Relaxed);
        } else {
            self.budget.total.fetch_sub(st.accounted - now, Relaxed);
        }
        st.accounted = now;
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
        self.settle(&mut st);
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
            self.settle(&mut st);
            let mine = st.queued_bytes + st.held_bytes;
            if frames > self.max_frames
                || st.held_bytes > self.max_bytes
                || self.budget.over_share(mine)
            {
                self.fail(&mut st, Failure::Slow)
            } else {
                false
            }
        } else {
            self.write_or_queue(&mut st, bytes.clone())
        };
        self.settle(&mut st);
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
        self.settle(&mut st);
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
        self.settle(&mut st);
    }

    /// Everything queued, for a connection that writes it itself (TLS).
    pub fn take_queued(&self) -> Vec<Bytes> {
        let mut st = self.lock();
        st.queued_bytes = 0;
        st.front_started = false;
        self.settle(&mut st);
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
                let full = self.drain(&mut st, socket);
                self.settle(&mut st);
                if !full {
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
        self.settle(st);
        let mine = st.queued_bytes + st.held_bytes;
        if st.queue.len() > self.max_frames
            || st.queued_bytes > self.max_bytes
            || self.budget.over_share(mine)
        {
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
        self.settle(st);
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

impl Drop for Outbound {
    fn drop(&mut self) {
        let accounted = self.lock().accounted;
        self.budget.total.fetch_sub(accounted, Relaxed);
        self.budget.members.fetch_sub(1, Relaxed);
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
        let out = Outbound::new(None, 100, 1 << 20, QueueBudget::new(usize::MAX));
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
        let out = Outbound::new(None, 3, 1 << 20, QueueBudget::new(usize::MAX));
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
        let out = Outbound::new(None, 100, 10, QueueBudget::new(usize::MAX));
        out.send(b("0123456789"));
        assert_eq!(out.failure(), None);
        out.send(b("a"));
        assert_eq!(out.failure(), Some(Failure::Slow));

        // Held frames count as well.
        let out = Outbound::new(None, 100, 10, QueueBudget::new(usize::MAX));
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
        let out = Outbound::new(Some(write), 2, 64 << 20, QueueBudget::new(usize::MAX));

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

    #[test]
    fn the_member_over_its_share_of_a_full_budget_is_dropped_and_the_total_follows() {
        let budget = QueueBudget::new(1000);
        let keeps_up = Outbound::new(None, 100, 1 << 20, budget.clone());
        let stalled = Outbound::new(None, 100, 1 << 20, budget.clone());
        let frame = |n: usize| Bytes::from(vec![0u8; n]);
        keeps_up.send(frame(300));
        stalled.send(frame(400));
        assert_eq!(budget.queued(), 700);
        // Over the cap: the member holding more than half of it goes.
        stalled.send(frame(400));
        assert_eq!(stalled.failure(), Some(Failure::Slow));
        assert_eq!(keeps_up.failure(), None);
        assert_eq!(
            budget.queued(),
            300,
            "the dropped member's bytes are released"
        );
        // The member that keeps up drains its queue; the total follows.
        assert_eq!(keeps_up.take_queued().len(), 1);
        assert_eq!(budget.queued(), 0);
        keeps_up.send(frame(900));
        assert_eq!(keeps_up.failure(), None, "under the cap nobody is dropped");
        drop(keeps_up);
        assert_eq!(
            budget.queued(),
            0,
            "a closed connection gives its bytes back"
        );
        drop(stalled);
        assert_eq!(budget.members.load(Relaxed), 0);
    }
}
