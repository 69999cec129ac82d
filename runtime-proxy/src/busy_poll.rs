//! Busy polling before the worker sleeps (one worker only, `--busy-poll MICROS`).
//!
//! When the single worker runs out of work it blocks in `epoll_wait`. On a virtual machine
//! that halts the vCPU, and the next packet has to wake it through the hypervisor, which costs
//! more than the packet's own work when packets arrive a few microseconds apart. Under load
//! they do: the proxy waits on the upstream and then on the client twice per request.
//!
//! So a task, the spinner, keeps the worker polling for a short window after work stops: it
//! yields in a loop, and the scheduler checks the I/O driver without blocking each time around.
//! When no connection has been polled for the whole window, the spinner stops and the worker
//! blocks as before. The spinner starts again when the worker next wakes (the runtime's unpark
//! hook), so an idle proxy does not spin at all.
//!
//! The window adapts by the rule of Linux's cpuidle-haltpoll governor: when the worker blocked
//! and woke within the longest window (`--busy-poll`), a longer window would have caught the
//! wake-up, so the window doubles (from at least [`GROW_START`]); when it slept longer than
//! that, the window halves, down to nothing. Sparse traffic therefore stops the spinning, and
//! dense traffic keeps it. On top of that, spinning that found no work may take at most
//! [`BUDGET_SHARE`] of the worker's time in each [`EPOCH`], whatever the traffic.

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// A window grows to at least this much from nothing.
pub const GROW_START: Duration = Duration::from_micros(10);
/// Spinning that finds no work may use this share of each epoch.
pub const BUDGET_SHARE: u32 = 4; // one quarter
/// The period over which the spinning budget is counted.
pub const EPOCH: Duration = Duration::from_millis(10);

thread_local! {
    /// Polls of downstream connection tasks on this thread: the spinner's sign of work.
    static POLLS: Cell<u64> = const { Cell::new(0) };
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Runs `future`, counting each of its polls as work for the spinner.
pub async fn counted<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    poll_fn(|cx| {
        POLLS.with(|polls| polls.set(polls.get().wrapping_add(1)));
        future.as_mut().poll(cx)
    })
    .await
}

/// The adaptive window and the budget, without clocks of their own (times are passed in), so
/// tests drive them with plain numbers.
#[derive(Debug)]
struct Governor {
    max: Duration,
    window: Duration,
    epoch_start: Option<Instant>,
    spent: Duration,
}

impl Governor {
    fn new(max: Duration) -> Self {
        Governor {
            max,
            window: Duration::ZERO,
            epoch_start: None,
            spent: Duration::ZERO,
        }
    }

    /// How long the spinner may currently poll without finding work.
    fn window(&self) -> Duration {
        self.window
    }

    /// The worker blocked and woke `idle` after work stopped (the spin before it included).
    fn woke(&mut self, idle: Duration) {
        if idle > self.max {
            self.window /= 2;
            if self.window < Duration::from_micros(1) {
                self.window = Duration::ZERO;
            }
        } else if idle > self.window {
            self.window = (self.window * 2).max(GROW_START).min(self.max);
        }
    }

    /// Counts `spun` (time spent polling without finding work) at `now`; false once this
    /// epoch's budget is spent.
    fn spend(&mut self, now: Instant, spun: Duration) -> bool {
        let start = *self.epoch_start.get_or_insert(now);
        if now.saturating_duration_since(start) >= EPOCH {
            self.epoch_start = Some(now);
            self.spent = Duration::ZERO;
        }
        self.spent += spun;
        self.spent < EPOCH / BUDGET_SHARE
    }
}

/// What the spinner did on this thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Spins started (one per wake-up of the worker while the window is open).
    pub spins: u64,
    /// Times a spin saw a connection polled again after a round without: a sleep saved.
    pub caught: u64,
    /// Time spent polling without finding work: the cost.
    pub idle: Duration,
}

/// What the hooks and the spinner share on the worker's thread.
struct State {
    governor: Governor,
    stats: Stats,
    /// Since when the worker has been idle, once it blocks.
    idle_since: Option<Instant>,
    /// When the spinner gave up: the connection polls seen then, and the last work before.
    gave_up: Option<(u64, Instant)>,
    /// The spinner, waiting for the worker to wake.
    waiter: Option<Waker>,
}

/// A single-threaded runtime that busy-polls for at most `max` before its worker sleeps. The
/// worker is the thread that calls `block_on`, which must be this one.
pub fn runtime(max: Duration) -> std::io::Result<tokio::runtime::Runtime> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(before_park)
        .on_thread_unpark(after_unpark)
        .build()?;
    install(max);
    runtime.spawn(spin());
    Ok(runtime)
}

/// What the spinner has done on this thread; `None` without [`runtime`].
pub fn stats() -> Option<Stats> {
    STATE.with(|state| state.borrow().as_ref().map(|s| s.stats))
}

fn install(max: Duration) {
    STATE.with(|state| {
        *state.borrow_mut() = Some(State {
            governor: Governor::new(max),
            stats: Stats::default(),
            idle_since: None,
            gave_up: None,
            waiter: None,
        });
    });
}

/// Runs `f` on this thread's state, if it has one.
fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    STATE.with(|state| state.borrow_mut().as_mut().map(f))
}

fn polls() -> u64 {
    POLLS.with(Cell::get)
}

/// The `on_thread_park` hook: the worker is about to block. It has been idle since the
/// spinner's last sign of work if the spinner gave up just before and no connection has been
/// polled since, else from now.
fn before_park() {
    with_state(|state| {
        let since = match state.gave_up.take() {
            Some((seen, last_work)) if seen == polls() => last_work,
            _ => Instant::now(),
        };
        state.idle_since = Some(since);
    });
}

/// The `on_thread_unpark` hook: the worker woke. Adapts the window to how long it was idle and
/// wakes the spinner.
fn after_unpark() {
    with_state(|state| {
        if let Some(since) = state.idle_since.take() {
            state.governor.woke(since.elapsed());
        }
        if let Some(waiter) = state.waiter.take() {
            waiter.wake();
        }
    });
}

/// The spinner: after each wake-up of the worker, polls until no connection has had work for
/// the current window or the budget is spent. Runs until the runtime stops.
async fn spin() {
    loop {
        // Wait for the worker to block and wake again.
        let mut registered = false;
        poll_fn(|cx| {
            if registered {
                return Poll::Ready(());
            }
            registered = true;
            with_state(|state| state.waiter = Some(cx.waker().clone()));
            Poll::Pending
        })
        .await;
        let window = with_state(|state| state.governor.window()).unwrap_or_default();
        if window.is_zero() {
            continue;
        }
        with_state(|state| state.stats.spins += 1);
        let mut seen = polls();
        let mut round_start = Instant::now();
        let mut last_work = round_start;
        let mut idle_rounds = false;
        loop {
            tokio::task::yield_now().await;
            let now = Instant::now();
            let current = polls();
            if current != seen {
                // A connection was polled in this round: work that would have found the
                // worker asleep if the last round found none.
                if idle_rounds {
                    with_state(|state| state.stats.caught += 1);
                }
                seen = current;
                last_work = now;
                idle_rounds = false;
            } else {
                idle_rounds = true;
                let spun = now.saturating_duration_since(round_start);
                let within_budget = with_state(|state| {
                    state.stats.idle += spun;
                    state.governor.spend(now, spun)
                });
                if now.saturating_duration_since(last_work) >= window || within_budget != Some(true)
                {
                    with_state(|state| state.gave_up = Some((seen, last_work)));
                    break;
                }
            }
            round_start = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_micros(50);

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn short_sleeps_grow_the_window_to_the_longest_and_no_further() {
        let mut g = Governor::new(MAX);
        assert_eq!(g.window(), Duration::ZERO, "no spinning before any wake-up");
        g.woke(us(30));
        assert_eq!(g.window(), GROW_START);
        g.woke(us(30));
        assert_eq!(g.window(), us(20));
        g.woke(us(30));
        assert_eq!(g.window(), us(40));
        g.woke(us(45));
        assert_eq!(g.window(), MAX);
        g.woke(us(45));
        assert_eq!(g.window(), MAX);
    }

    #[test]
    fn a_wake_up_inside_the_window_changes_nothing() {
        let mut g = Governor::new(MAX);
        for _ in 0..4 {
            g.woke(us(30));
        }
        assert_eq!(g.window(), us(40));
        g.woke(us(25));
        assert_eq!(g.window(), us(40));
    }

    #[test]
    fn long_sleeps_halve_the_window_down_to_nothing() {
        let mut g = Governor::new(MAX);
        for _ in 0..5 {
            g.woke(us(45));
        }
        assert_eq!(g.window(), MAX);
        g.woke(Duration::from_millis(5));
        assert_eq!(g.window(), us(25));
        for _ in 0..5 {
            g.woke(Duration::from_secs(1));
        }
        assert_eq!(g.window(), Duration::ZERO, "an idle proxy stops spinning");
        g.woke(Duration::from_secs(1));
        assert_eq!(g.window(), Duration::ZERO);
    }

    #[test]
    fn the_budget_is_a_quarter_of_each_epoch() {
        let mut g = Governor::new(MAX);
        let t0 = Instant::now();
        assert!(g.spend(t0, us(1_000)));
        assert!(g.spend(t0 + us(3_000), us(1_000)));
        assert!(
            !g.spend(t0 + us(6_000), us(500)),
            "2.5 ms of 10 ms is the whole budget"
        );
        assert!(!g.spend(t0 + us(9_000), us(1)));
        assert!(g.spend(t0 + EPOCH, us(1)), "a new epoch starts afresh");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn counted_futures_count_their_polls() {
        let before = POLLS.with(Cell::get);
        let mut yields = 3;
        let output = counted(poll_fn(|cx| {
            if yields == 0 {
                return Poll::Ready(7);
            }
            yields -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }))
        .await;
        assert_eq!(output, 7);
        assert_eq!(POLLS.with(Cell::get) - before, 4);
    }
}
