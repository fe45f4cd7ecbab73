//! Reconnect delays: exponential backoff with jitter, reset only by a connection that
//! lasted ([`Reconnects`]).

use std::time::Duration;

use tokio::time::Instant;

/// Exponential backoff: `initial`, doubling up to `max`, each delay scattered by ±25 % so a
/// classroom of stations does not reconnect in lockstep after the broker restarts.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    rng: u64,
}

impl Backoff {
    /// A backoff starting at `initial`, never above `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let seed =
            crate::clock::system_now() as u64 ^ u64::from(std::process::id()).rotate_left(32);
        Backoff {
            initial,
            max: max.max(initial),
            next: initial,
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt; doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        // Saturating: however many attempts, and whatever `max`, no arithmetic overflows.
        self.next = self.next.saturating_mul(2).min(self.max);
        // xorshift64: plenty for jitter.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        Duration::try_from_secs_f64(base.as_secs_f64() * (0.75 + unit * 0.5)).unwrap_or(base)
    }

    /// Back to `initial` after a connection that worked.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Reports of a broker that keeps closing the session come after this many closes in a
/// row, then after twice as many each time (3, 6, 12, …).
const FIRST_REPORT: u64 = 3;

/// The reconnect policy of one publisher: the backoff, reset only once a connection has
/// stayed up for `stable_after` (as AWS's IoT device SDKs do), so a broker that accepts the
/// station and drops it at once sees growing delays instead of a reconnect a second; and
/// the count of such early closes, so the cause can be named once instead of at every
/// attempt. Real time (tokio's clock), like every network timer.
#[derive(Debug)]
pub struct Reconnects {
    backoff: Backoff,
    stable_after: Duration,
    /// CONNACK of the current connection, until it counts as stable.
    connected_at: Option<Instant>,
    /// Connections in a row that the broker closed before they were stable.
    in_a_row: u64,
    next_report: u64,
    total: u64,
}

impl Reconnects {
    /// `backoff` between attempts, reset by a connection that lasted `stable_after`.
    pub fn new(backoff: Backoff, stable_after: Duration) -> Reconnects {
        Reconnects {
            backoff,
            stable_after,
            connected_at: None,
            in_a_row: 0,
            next_report: FIRST_REPORT,
            total: 0,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.backoff.next_delay()
    }

    /// A connection was accepted (CONNACK) at `now`.
    pub fn connected(&mut self, now: Instant) {
        self.connected_at = Some(now);
    }

    /// True (once per connection) when the connection has been up for `stable_after` at
    /// `now`: the backoff starts again from its initial delay and early closes are forgotten.
    pub fn check_stable(&mut self, now: Instant) -> bool {
        match self.connected_at {
            Some(at) if now.saturating_duration_since(at) >= self.stable_after => {
                self.connected_at = None;
                self.backoff.reset();
                self.in_a_row = 0;
                self.next_report = FIRST_REPORT;
                true
            }
            _ => false,
        }
    }

    /// The connection ended at `now`; `by_broker`: the broker closed it. Returns the number
    /// of connections in a row the broker closed before they were stable, when that number
    /// is due to be reported (3, then 6, 12, …).
    pub fn ended(&mut self, now: Instant, by_broker: bool) -> Option<u64> {
        self.check_stable(now);
        // `None`: it was stable (or never accepted).
        self.connected_at.take()?;
        if !by_broker {
            return None;
        }
        self.in_a_row += 1;
        self.total += 1;
        if self.in_a_row < self.next_report {
            return None;
        }
        self.next_report = self.in_a_row.saturating_mul(2);
        Some(self.in_a_row)
    }

    /// True while the last connection(s) were closed by the broker before they were stable:
    /// routine messages about each new one are not worth a line each.
    pub fn churning(&self) -> bool {
        self.in_a_row > 0
    }

    /// Connections the broker closed before they were stable, in all.
    pub fn early_closes(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let delays: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        for (d, base) in delays.iter().zip([1.0, 2.0, 4.0, 8.0, 8.0, 8.0]) {
            let s = d.as_secs_f64();
            assert!(s >= base * 0.75 && s <= base * 1.25, "{s} vs {base}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1250));
    }

    #[test]
    fn no_overflow_however_many_attempts() {
        // A backoff without a useful cap doubles until Duration runs out: it saturates.
        let mut b = Backoff::new(Duration::from_secs(1), Duration::MAX);
        let mut last = Duration::ZERO;
        for _ in 0..200 {
            last = b.next_delay();
        }
        assert!(last >= Duration::from_secs(u64::MAX / 2), "{last:?}");
    }

    fn reconnects() -> Reconnects {
        Reconnects::new(
            Backoff::new(Duration::from_secs(1), Duration::from_secs(64)),
            Duration::from_secs(30),
        )
    }

    #[test]
    fn a_connection_dropped_at_once_does_not_reset_the_backoff() {
        let mut r = reconnects();
        let mut now = Instant::now();
        let mut delays = Vec::new();
        let mut reports = Vec::new();
        for n in 1..=13u64 {
            r.connected(now);
            now += Duration::from_millis(5);
            if let Some(k) = r.ended(now, true) {
                reports.push((n, k));
            }
            let d = r.next_delay();
            delays.push(d.as_secs_f64());
            now += d;
        }
        // 1, 2, 4, … 64 s (± 25 %): it grows as if nothing had connected.
        assert!(
            delays[5] >= 32.0 * 0.75 && delays[12] >= 64.0 * 0.75,
            "{delays:?}"
        );
        assert_eq!(reports, [(3, 3), (6, 6), (12, 12)]);
        assert!(r.churning());
        assert_eq!(r.early_closes(), 13);
    }

    #[test]
    fn a_connection_that_lasted_resets_the_backoff() {
        let mut r = reconnects();
        let mut now = Instant::now();
        for _ in 0..5 {
            r.connected(now);
            r.ended(now, true);
            now += r.next_delay();
        }
        r.connected(now);
        assert!(!r.check_stable(now + Duration::from_secs(29)));
        assert!(r.check_stable(now + Duration::from_secs(30)));
        assert!(!r.churning());
        assert!(r.next_delay() <= Duration::from_millis(1250));
        // Lost later, by the broker: not an early close, and no report.
        assert_eq!(r.ended(now + Duration::from_secs(3600), true), None);
        assert_eq!(r.early_closes(), 5);
        // A connection that ends early for another reason (our own watchdog, the network)
        // is not counted as the broker's doing, and does not reset the backoff either.
        r.connected(now);
        assert_eq!(r.ended(now + Duration::from_secs(1), false), None);
        assert_eq!(r.early_closes(), 5);
        assert!(r.next_delay() >= Duration::from_millis(1500));
    }
}
