//! The one source of station time.
//!
//! Every station timer — sensor intervals, commit batching, aggregates, retention —
//! reads and sleeps on a [`Clock`]. Three kinds exist:
//!
//! * **real**: the system's UTC clock; sleeping is a tokio sleep.
//! * **scaled**: starts at a chosen instant and runs `speed` times faster than real time
//!   (`--speed 60` turns a day into 24 minutes).
//! * **virtual** (`--speed max`): a discrete-event clock. Each task that owns station timers
//!   registers as a [`Participant`]; time jumps to the earliest deadline as soon as every
//!   participant is asleep. Work in progress (a sensor read, a commit) therefore always
//!   finishes before time moves on, so a simulated day runs as fast as the machine allows
//!   and in exactly the order it would in real time.
//!
//! Network timers (MQTT keep-alive, reconnect backoff) are not station timers: they use
//! tokio's real time directly.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::reading::Timestamp;

/// Current UTC time of the machine, in ms.
pub fn system_now() -> Timestamp {
    let now = std::time::SystemTime::now();
    match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Start of the UTC day that holds `ts`.
pub fn start_of_utc_day(ts: Timestamp) -> Timestamp {
    ts - ts.rem_euclid(86_400_000)
}

/// Slowest `--speed` factor.
pub const MIN_SPEED: f64 = 0.001;
/// Fastest `--speed` factor (beyond it, `--speed max`).
pub const MAX_SPEED: f64 = 1_000_000.0;

/// Why `run --speed` cannot make a clock.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpeedError {
    /// Not `max` and not a factor within [`MIN_SPEED`]..=[`MAX_SPEED`].
    #[error("--speed `{0}` must be a number from {MIN_SPEED} to {MAX_SPEED}, or `max`")]
    NotASpeed(String),
    /// A virtual clock with no end would run forever.
    #[error("--speed max needs --duration (e.g. --duration 24h): a virtual clock would otherwise run forever")]
    VirtualWithoutEnd,
}

/// The station clock; cheap to clone, all clones share one time.
#[derive(Clone)]
pub struct Clock {
    inner: Arc<Kind>,
}

enum Kind {
    Real,
    Scaled {
        start: Timestamp,
        origin: Instant,
        speed: f64,
    },
    Virtual(Mutex<VirtualState>),
}

#[derive(Default)]
struct VirtualState {
    now: Timestamp,
    /// Station time that passed by the clock running, not by [`Clock::jump`] steps.
    elapsed: i64,
    /// Units of work handed between tasks and not yet finished (readings on their way
    /// through the pipeline): time waits for them.
    in_flight: u64,
    participants: usize,
    next_id: u64,
    waiters: Vec<Waiter>,
}

struct Waiter {
    id: u64,
    deadline: Timestamp,
    waker: Waker,
}

impl VirtualState {
    /// Moves time to the earliest deadline when every participant is asleep, and wakes
    /// every sleeper whose deadline has come.
    fn maybe_advance(&mut self) {
        if self.participants == 0 || self.waiters.len() < self.participants || self.in_flight > 0 {
            return;
        }
        let Some(earliest) = self.waiters.iter().map(|w| w.deadline).min() else {
            return;
        };
        if earliest > self.now {
            self.elapsed += earliest - self.now;
            self.now = earliest;
        }
        let now = self.now;
        let mut i = 0;
        while i < self.waiters.len() {
            if self.waiters[i].deadline <= now {
                let w = self.waiters.swap_remove(i);
                w.waker.wake();
            } else {
                i += 1;
            }
        }
    }
}

impl Clock {
    /// The machine's real UTC clock.
    pub fn real() -> Clock {
        Clock {
            inner: Arc::new(Kind::Real),
        }
    }

    /// A clock that starts at `start` and runs `speed` times faster than real time.
    pub fn scaled(start: Timestamp, speed: f64) -> Clock {
        Clock {
            inner: Arc::new(Kind::Scaled {
                start,
                origin: Instant::now(),
                speed: speed.max(f64::MIN_POSITIVE),
            }),
        }
    }

    /// The clock of `anemone run --speed SPEED [--start START]`: `"1"` is real time (or,
    /// with a start, real speed from that start), `"max"` a virtual clock (which needs a
    /// `finite` run), anything else a factor for a scaled clock. An accelerated run
    /// without a start begins at the start of the current UTC day, so one seed gives the
    /// same readings all day.
    pub fn for_run(
        speed: &str,
        start: Option<Timestamp>,
        finite: bool,
    ) -> Result<Clock, SpeedError> {
        let accelerated = speed != "1";
        let from = match start {
            Some(s) => s,
            None if accelerated => start_of_utc_day(system_now()),
            None => system_now(),
        };
        let clock = match speed {
            "max" => Clock::virtual_at(from),
            "1" if start.is_none() => Clock::real(),
            factor => {
                // Bounded so that no arithmetic on station time can overflow (a year of
                // real time at the top speed is still only ~10^16 ms).
                let f: f64 = factor
                    .parse()
                    .ok()
                    .filter(|f: &f64| (MIN_SPEED..=MAX_SPEED).contains(f))
                    .ok_or_else(|| SpeedError::NotASpeed(factor.to_string()))?;
                Clock::scaled(from, f)
            }
        };
        if clock.is_virtual() && !finite {
            return Err(SpeedError::VirtualWithoutEnd);
        }
        Ok(clock)
    }

    /// A discrete-event clock at `start` that runs as fast as its participants allow.
    pub fn virtual_at(start: Timestamp) -> Clock {
        Clock {
            inner: Arc::new(Kind::Virtual(Mutex::new(VirtualState {
                now: start,
                ..VirtualState::default()
            }))),
        }
    }

    /// True for the real clock (no simulation of time).
    pub fn is_real(&self) -> bool {
        matches!(*self.inner, Kind::Real)
    }

    /// True for the discrete-event (`--speed max`) clock.
    pub fn is_virtual(&self) -> bool {
        matches!(*self.inner, Kind::Virtual(_))
    }

    /// The current station time.
    pub fn now(&self) -> Timestamp {
        match &*self.inner {
            Kind::Real => system_now(),
            Kind::Scaled {
                start,
                origin,
                speed,
            } => start + (origin.elapsed().as_secs_f64() * speed * 1000.0) as i64,
            Kind::Virtual(state) => lock(state).now,
        }
    }

    /// Station time elapsed, in ms, as a monotonic source measures it: wall-clock steps
    /// (NTP, a GPS, [`Clock::jump`]) do not count. Real clock: the monotonic clock since
    /// the first call in this process; scaled: real elapsed time × speed; virtual: the
    /// time it ran. Only differences between two calls on one clock mean anything.
    pub fn elapsed_ms(&self) -> i64 {
        match &*self.inner {
            Kind::Real => {
                static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
                let origin = *ORIGIN.get_or_init(Instant::now);
                origin.elapsed().as_millis() as i64
            }
            Kind::Scaled { origin, speed, .. } => {
                (origin.elapsed().as_secs_f64() * speed * 1000.0) as i64
            }
            Kind::Virtual(state) => lock(state).elapsed,
        }
    }

    /// Steps a virtual clock by `delta_ms` (negative: backwards), as an NTP step does
    /// to a real clock. Used to test clock jumps; no-op on real and scaled clocks.
    pub fn jump(&self, delta_ms: i64) {
        if let Kind::Virtual(state) = &*self.inner {
            let mut s = lock(state);
            s.now += delta_ms;
            s.maybe_advance();
        }
    }

    /// Marks `n` units of work as in flight (e.g. readings sent to the pipeline): a
    /// virtual clock does not move until they are [released](Clock::release). No-op on
    /// real and scaled clocks.
    pub fn hold(&self, n: u64) {
        if let Kind::Virtual(state) = &*self.inner {
            lock(state).in_flight += n;
        }
    }

    /// Marks `n` units of work as finished.
    pub fn release(&self, n: u64) {
        if let Kind::Virtual(state) = &*self.inner {
            let mut s = lock(state);
            s.in_flight = s.in_flight.saturating_sub(n);
            s.maybe_advance();
        }
    }

    /// Registers a task that sleeps on this clock. On a virtual clock, time only moves
    /// while every registered participant is asleep; dropping the handle unregisters it.
    pub fn participant(&self) -> Participant {
        let id = if let Kind::Virtual(state) = &*self.inner {
            let mut s = lock(state);
            s.participants += 1;
            s.next_id += 1;
            s.next_id
        } else {
            0
        };
        Participant {
            clock: self.clone(),
            id,
        }
    }
}

fn lock(state: &Mutex<VirtualState>) -> MutexGuard<'_, VirtualState> {
    // A panic while holding this lock cannot leave the state half-updated in a way that
    // matters more than stopping, so a poisoned lock is simply taken over.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// A task's handle for sleeping on the station clock.
pub struct Participant {
    clock: Clock,
    id: u64,
}

impl Participant {
    /// The clock this participant sleeps on.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The current station time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Sleeps until station time `deadline` (returns at once if it has passed).
    pub fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_> {
        let real = match &*self.clock.inner {
            Kind::Real | Kind::Scaled { .. } => {
                let now = self.clock.now();
                let speed = match &*self.clock.inner {
                    Kind::Scaled { speed, .. } => *speed,
                    _ => 1.0,
                };
                let ms = ((deadline - now).max(0) as f64 / speed).ceil() as u64;
                Some(Box::pin(tokio::time::sleep(Duration::from_millis(ms))))
            }
            Kind::Virtual(_) => None,
        };
        Sleep {
            participant: self,
            deadline,
            registered: false,
            real,
        }
    }

    /// Sleeps for `ms` milliseconds of station time.
    pub fn sleep_ms(&self, ms: i64) -> Sleep<'_> {
        self.sleep_until(self.now() + ms)
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        if let Kind::Virtual(state) = &*self.clock.inner {
            let mut s = lock(state);
            s.participants = s.participants.saturating_sub(1);
            let id = self.id;
            s.waiters.retain(|w| w.id != id);
            s.maybe_advance();
        }
    }
}

/// Future returned by [`Participant::sleep_until`]. Cancel-safe: dropping it withdraws
/// the sleeper.
pub struct Sleep<'a> {
    participant: &'a Participant,
    deadline: Timestamp,
    registered: bool,
    real: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(real) = self.real.as_mut() {
            return real.as_mut().poll(cx);
        }
        let Kind::Virtual(state) = &*self.participant.clock.inner else {
            return Poll::Ready(());
        };
        let id = self.participant.id;
        let deadline = self.deadline;
        let mut s = lock(state);
        if s.now >= deadline {
            s.waiters.retain(|w| w.id != id);
            drop(s);
            self.registered = false;
            return Poll::Ready(());
        }
        if let Some(w) = s.waiters.iter_mut().find(|w| w.id == id) {
            w.waker = cx.waker().clone();
            w.deadline = deadline;
        } else {
            s.waiters.push(Waiter {
                id,
                deadline,
                waker: cx.waker().clone(),
            });
            s.maybe_advance();
        }
        let ready = s.now >= deadline;
        if ready {
            s.waiters.retain(|w| w.id != id);
        }
        drop(s);
        self.registered = !ready;
        if ready {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Sleep<'_> {
    fn drop(&mut self) {
        if !self.registered {
            return;
        }
        if let Kind::Virtual(state) = &*self.participant.clock.inner {
            let id = self.participant.id;
            lock(state).waiters.retain(|w| w.id != id);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_clock_from_speed() {
        use super::{Clock, SpeedError};
        let c = Clock::for_run("max", Some(5_000), true).expect("virtual clock");
        assert!(c.is_virtual());
        assert_eq!(c.now(), 5_000);
        assert!(Clock::for_run("1", None, false).expect("real").is_real());
        let scaled = Clock::for_run("1", Some(5_000), false).expect("scaled");
        assert!(!scaled.is_real() && !scaled.is_virtual());
        assert_eq!(
            Clock::for_run("max", Some(0), false).err(),
            Some(SpeedError::VirtualWithoutEnd)
        );
        assert_eq!(
            Clock::for_run("2e7", None, true).err(),
            Some(SpeedError::NotASpeed("2e7".into()))
        );
        assert_eq!(super::start_of_utc_day(86_400_000 + 5), 86_400_000);
    }

    use super::*;

    #[tokio::test]
    async fn virtual_clock_jumps_when_all_sleep() {
        let clock = Clock::virtual_at(1_000);
        let a = clock.participant();
        let b = clock.participant();
        let c2 = clock.clone();
        let task = tokio::spawn(async move {
            let mut seen = vec![];
            for _ in 0..3 {
                b.sleep_ms(300).await;
                seen.push(c2.now());
            }
            seen
        });
        let mut mine = vec![];
        for _ in 0..2 {
            a.sleep_ms(500).await;
            mine.push(clock.now());
        }
        drop(a);
        let theirs = task.await.unwrap();
        assert_eq!(mine, vec![1_500, 2_000]);
        assert_eq!(theirs, vec![1_300, 1_600, 1_900]);
    }

    #[tokio::test]
    async fn virtual_clock_waits_for_busy_participant() {
        let clock = Clock::virtual_at(0);
        let a = clock.participant();
        let busy = clock.participant();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let c2 = clock.clone();
        let waiter = tokio::spawn(async move {
            a.sleep_until(10_000).await;
            c2.now()
        });
        tokio::task::yield_now().await;
        // `busy` is awake: time must not have moved.
        assert_eq!(clock.now(), 0);
        let _ = tx.send(());
        let _ = rx.await;
        drop(busy);
        assert_eq!(waiter.await.unwrap(), 10_000);
    }

    #[tokio::test]
    async fn cancelled_sleep_withdraws() {
        let clock = Clock::virtual_at(0);
        let a = clock.participant();
        let b = clock.participant();
        {
            let s = a.sleep_until(50);
            let r = tokio::time::timeout(Duration::from_millis(5), s).await;
            assert!(r.is_err(), "b is awake, so a cannot wake");
        }
        // a's sleep was dropped: if it still counted, b's sleep would let time jump.
        let r = tokio::time::timeout(Duration::from_millis(5), b.sleep_until(20)).await;
        assert!(r.is_err(), "a is awake now, so time must stay");
        assert_eq!(clock.now(), 0);
        drop(a);
        b.sleep_until(20).await;
        assert_eq!(clock.now(), 20);
    }

    #[tokio::test]
    async fn elapsed_ignores_jumps() {
        let clock = Clock::virtual_at(1_000);
        let p = clock.participant();
        let e0 = clock.elapsed_ms();
        p.sleep_until(1_500).await;
        clock.jump(10_000_000);
        p.sleep_ms(200).await;
        clock.jump(-50_000_000);
        assert_eq!(clock.elapsed_ms() - e0, 700);
    }

    #[tokio::test]
    async fn scaled_clock_runs_fast() {
        let clock = Clock::scaled(0, 1000.0);
        let p = clock.participant();
        p.sleep_until(2_000).await;
        assert!(clock.now() >= 2_000);
    }
}
