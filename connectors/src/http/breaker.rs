//! A circuit breaker per source: stop calling a source that keeps failing, so a dead
//! department costs each verification nothing instead of a timeout, and try again later.
//!
//! Closed (calls go through) → `failures` consecutive failed calls → Open (calls fail at
//! once with `source_circuit_open`) → after `cooldown` → Half-open (one probe call goes
//! through, the others still fail at once) → the probe's success closes, its failure opens
//! again. (tokio's `test-util` clock is not available: turning that feature on would rebuild
//! polars, which uses tokio too; the tests use short real cooldowns.)

use std::sync::Mutex;
use std::time::Duration;

use std::time::Instant;

/// The breaker's state as a word (metrics, `/v1/health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail at once.
    Open,
    /// One probe is (or may be) in flight.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// One source's breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

impl Breaker {
    /// A closed breaker; `threshold` 0 never opens.
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            threshold,
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent (each arm
        // writes a whole state), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May a call go out now? `false` while open (and while a half-open probe is out).
    pub fn allow(&self) -> bool {
        let mut s = self.lock();
        match *s {
            State::Closed { .. } => true,
            State::Open { until } => {
                if Instant::now() >= until {
                    *s = State::HalfOpen { probing: true };
                    true
                } else {
                    false
                }
            }
            State::HalfOpen { probing } => {
                if probing {
                    false
                } else {
                    *s = State::HalfOpen { probing: true };
                    true
                }
            }
        }
    }

    /// Record the end of a call that [`Breaker::allow`] let through.
    pub fn record(&self, ok: bool) {
        let mut s = self.lock();
        if ok {
            *s = State::Closed { failures: 0 };
            return;
        }
        let open = State::Open {
            until: Instant::now() + self.cooldown,
        };
        *s = match *s {
            State::Closed { failures } => {
                let failures = failures + 1;
                if self.threshold > 0 && failures >= self.threshold {
                    open
                } else {
                    State::Closed { failures }
                }
            }
            State::HalfOpen { .. } => open,
            State::Open { until } => State::Open { until },
        };
    }

    /// The state now (an elapsed open period reads as half-open).
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_failures_open_it_and_a_probe_after_the_cooldown_closes_it() {
        let b = Breaker::new(3, Duration::from_millis(400));
        for _ in 0..2 {
            assert!(b.allow());
            b.record(false);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow());
        b.record(false);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(420));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.allow(), "the probe goes through");
        assert!(!b.allow(), "only one probe at a time");
        b.record(true);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow());
    }

    #[test]
    fn a_failed_probe_opens_it_for_another_cooldown() {
        let b = Breaker::new(1, Duration::from_millis(400));
        assert!(b.allow());
        b.record(false);
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(420));
        assert!(b.allow());
        b.record(false);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow());
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = Breaker::new(2, Duration::from_secs(1));
        b.record(false);
        b.record(true);
        b.record(false);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_zero_threshold_never_opens() {
        let b = Breaker::new(0, Duration::from_secs(1));
        for _ in 0..100 {
            b.record(false);
        }
        assert!(b.allow());
    }
}
