//! A hybrid logical clock per client: readings never go backwards, stay close
//! to wall time, and move past every reading this client has seen.

use spoke_relay::proto::Hlc;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    last: Hlc,
}

impl Clock {
    pub fn starting_at(last: Hlc) -> Self {
        Clock { last }
    }

    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A new reading for a local event at wall time `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        self.last = if now_ms > self.last.wall_ms {
            Hlc {
                wall_ms: now_ms,
                logical: 0,
            }
        } else {
            bump(self.last)
        };
        self.last
    }

    /// Folds in a reading received from another client, so that later local
    /// readings order after it.
    pub fn observe(&mut self, remote: Hlc) {
        if remote > self.last {
            self.last = remote;
        }
    }
}

fn bump(h: Hlc) -> Hlc {
    match h.logical.checked_add(1) {
        Some(logical) => Hlc {
            wall_ms: h.wall_ms,
            logical,
        },
        // A counter this large means a runaway clock; move into the next millisecond.
        None => Hlc {
            wall_ms: h.wall_ms.saturating_add(1),
            logical: 0,
        },
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn wall_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_strictly_increasing_even_when_wall_time_stalls_or_goes_back() {
        let mut clock = Clock::default();
        let a = clock.tick(1000);
        let b = clock.tick(1000);
        let c = clock.tick(900);
        let d = clock.tick(2000);
        assert!(a < b && b < c && c < d);
        assert_eq!(
            d,
            Hlc {
                wall_ms: 2000,
                logical: 0
            }
        );
    }

    #[test]
    fn observing_a_remote_reading_moves_local_time_past_it() {
        let mut clock = Clock::default();
        clock.tick(1000);
        clock.observe(Hlc {
            wall_ms: 5000,
            logical: 4,
        });
        let next = clock.tick(1001);
        assert!(
            next > Hlc {
                wall_ms: 5000,
                logical: 4
            }
        );
    }

    #[test]
    fn logical_overflow_rolls_into_the_next_millisecond() {
        let mut clock = Clock::starting_at(Hlc {
            wall_ms: 10,
            logical: u32::MAX,
        });
        assert_eq!(
            clock.tick(5),
            Hlc {
                wall_ms: 11,
                logical: 0
            }
        );
    }
}
