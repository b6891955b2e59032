//! One memory budget for decoding: every decode reserves the bytes it will
//! need (known from the header) before it allocates them, and waits while
//! other decodes hold the rest. Workers share one budget, so the peak is the
//! budget, not the budget times the number of workers.

use std::sync::{Arc, Condvar, Mutex};

/// What one import (or one rendition run) may hold in decoded pixels at once.
pub const DEFAULT_BUDGET_BYTES: u64 = 512 * 1024 * 1024;

/// A pool of bytes shared by the threads that decode.
#[derive(Debug)]
pub struct MemoryBudget {
    total: u64,
    free: Mutex<u64>,
    returned: Condvar,
}

/// Bytes held until dropped.
#[derive(Debug)]
pub struct Reservation<'a> {
    budget: &'a MemoryBudget,
    bytes: u64,
}

/// A single decode that would need more than the whole budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("needs {needed} bytes, more than the {total}-byte decoding budget")]
pub struct OverBudget {
    pub needed: u64,
    pub total: u64,
}

impl MemoryBudget {
    pub fn new(total: u64) -> Self {
        Self {
            total,
            free: Mutex::new(total),
            returned: Condvar::new(),
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Holds `bytes` of the budget, waiting until other reservations give
    /// enough back. A request larger than the whole budget fails at once
    /// rather than waiting forever. A thread must hold at most one
    /// reservation at a time, or two threads could each wait on the other.
    pub fn reserve(&self, bytes: u64) -> Result<Reservation<'_>, OverBudget> {
        if bytes > self.total {
            return Err(OverBudget {
                needed: bytes,
                total: self.total,
            });
        }
        // A poisoned lock only means another decode panicked; the count is
        // still right because reservations give back in `drop`.
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free < bytes {
            free = self.returned.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= bytes;
        Ok(Reservation {
            budget: self,
            bytes,
        })
    }

    /// Like [`reserve`](Self::reserve), for bytes that outlive the caller's
    /// stack: a file's contents passed on to be recorded.
    pub fn reserve_owned(self: &Arc<Self>, bytes: u64) -> Result<HeldBytes, OverBudget> {
        let reservation = self.reserve(bytes)?;
        // The owned handle gives the bytes back instead.
        std::mem::forget(reservation);
        Ok(HeldBytes {
            budget: self.clone(),
            bytes,
        })
    }

    fn give_back(&self, bytes: u64) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        *free += bytes;
        self.returned.notify_all();
    }

    /// Bytes not reserved right now.
    pub fn available(&self) -> u64 {
        *self.free.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for MemoryBudget {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET_BYTES)
    }
}

impl Reservation<'_> {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

/// Bytes held from a shared budget until dropped, wherever they go.
#[derive(Debug)]
pub struct HeldBytes {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl Drop for HeldBytes {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    #[test]
    fn a_request_over_the_whole_budget_fails_at_once() {
        let budget = MemoryBudget::new(100);
        assert_eq!(
            budget.reserve(101).expect_err("over"),
            OverBudget {
                needed: 101,
                total: 100
            }
        );
        assert_eq!(budget.available(), 100);
    }

    #[test]
    fn owned_bytes_come_back_when_dropped_on_another_thread() {
        let budget = Arc::new(MemoryBudget::new(100));
        let held = budget.reserve_owned(70).expect("fits");
        assert_eq!(budget.available(), 30);
        std::thread::spawn(move || drop(held))
            .join()
            .expect("thread");
        assert_eq!(budget.available(), 100);
    }

    #[test]
    fn reservations_never_add_up_past_the_budget_and_all_come_back() {
        let budget = Arc::new(MemoryBudget::new(100));
        let held = Arc::new(AtomicU64::new(0));
        let peak = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (budget, held, peak) = (budget.clone(), held.clone(), peak.clone());
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        let r = budget.reserve(45).expect("fits");
                        let now = held.fetch_add(r.bytes(), Ordering::SeqCst) + r.bytes();
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(2));
                        held.fetch_sub(r.bytes(), Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("worker");
        }
        // 45 + 45 fit in 100, a third does not: at most two at once.
        assert_eq!(peak.load(Ordering::SeqCst), 90);
        assert_eq!(budget.available(), 100);
    }
}
