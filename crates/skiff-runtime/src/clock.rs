//! Wall-clock time for control loops, driven by tokio's clock.
//!
//! Controllers compare timestamps (a Job's activeDeadlineSeconds, a CronJob's schedule, a
//! node's last heartbeat) and also sleep. Both must follow the same clock so that tests can
//! pause tokio's time and advance it: [`Clock::now`] is a fixed wall-clock origin plus the
//! tokio time elapsed since the clock was made. An accelerated clock ([`Clock::accelerated`])
//! runs a fixed number of times faster than tokio time, for tests of schedules measured in
//! minutes (a CronJob's) that must run in seconds.

use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

/// A wall clock that advances with tokio time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin_wall: Timestamp,
    origin: Instant,
    /// Wall seconds per tokio second (1 but for accelerated test clocks).
    rate: u32,
}

impl Clock {
    /// The real time (advancing with tokio's clock, which is real time unless paused).
    pub fn system() -> Clock {
        Clock::starting_at(Timestamp::now())
    }

    /// A clock that reads `at` now and advances with tokio time from here.
    pub fn starting_at(at: Timestamp) -> Clock {
        Clock::accelerated(at, 1)
    }

    /// A clock that reads `at` now and then runs `rate` times faster than tokio time.
    pub fn accelerated(at: Timestamp, rate: u32) -> Clock {
        Clock {
            origin_wall: at,
            origin: Instant::now(),
            rate: rate.max(1),
        }
    }

    pub fn now(&self) -> Timestamp {
        let elapsed = Instant::now().saturating_duration_since(self.origin) * self.rate;
        self.origin_wall
            .checked_add(jiff::SignedDuration::try_from(elapsed).unwrap_or_default())
            .unwrap_or(self.origin_wall)
    }

    /// `now` as Kubernetes writes times (RFC 3339, seconds precision).
    pub fn now_k8s(&self) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
        k8s_time(self.now())
    }

    /// How long to sleep (in tokio time) from now until the clock reads `t` (zero if past).
    pub fn until(&self, t: Timestamp) -> Duration {
        let d = t.duration_since(self.now());
        Duration::try_from(d).unwrap_or(Duration::ZERO) / self.rate
    }

    /// How long since `t` (zero if `t` is in the future).
    pub fn since(&self, t: Timestamp) -> Duration {
        Duration::try_from(self.now().duration_since(t)).unwrap_or(Duration::ZERO)
    }
}

/// `t` as Kubernetes writes times: rounded to the second (RFC 3339, seconds precision).
pub fn k8s_time(t: Timestamp) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        t.round(jiff::TimestampRound::new().smallest(jiff::Unit::Second))
            .unwrap_or(t),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_paused_tokio_time() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let c = Clock::starting_at(t0);
        assert_eq!(c.now(), t0);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(
            c.now(),
            "2026-01-01T00:01:30Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(c.since(t0), Duration::from_secs(90));
        assert_eq!(
            c.until("2026-01-01T00:02:00Z".parse().unwrap()),
            Duration::from_secs(30)
        );
        assert_eq!(c.until(t0), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn accelerated_clocks_run_faster_and_sleep_shorter() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let c = Clock::accelerated(t0, 30);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            c.now(),
            "2026-01-01T00:01:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            c.until("2026-01-01T00:02:00Z".parse().unwrap()),
            Duration::from_secs(2)
        );
    }
}
