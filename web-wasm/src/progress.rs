//! Progress as a person sees it: bytes hashed, bytes stored, speed and time left.
//!
//! Counts only ever grow (a retried or out-of-order part never takes progress back), and
//! speed is an exponentially weighted average over time (time constant a few seconds), so
//! the ETA does not jump with each 8 MiB part. Pure: the caller passes the clock.

use serde::Serialize;

/// Seconds over which the speed average forgets.
const TAU_SECS: f64 = 3.0;

#[derive(Debug, Clone)]
pub struct Progress {
    total: u64,
    hashed: u64,
    sent: u64,
    rate: Option<f64>,
    last: Option<(f64, u64)>,
}

/// What the engine reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Snapshot {
    pub total: u64,
    pub hashed: u64,
    pub sent: u64,
    /// Bytes per second stored, smoothed; 0 until measured.
    pub bytes_per_sec: f64,
    /// Seconds left at the smoothed speed, when known.
    pub eta_secs: Option<f64>,
}

impl Progress {
    pub fn new(total: u64) -> Self {
        Self { total, hashed: 0, sent: 0, rate: None, last: None }
    }

    /// Adds hashed bytes.
    pub fn hashed(&mut self, bytes: u64) {
        self.hashed = (self.hashed + bytes).min(self.total);
    }

    /// Counts bytes already stored before this session (a resume): not network speed.
    pub fn already_sent(&mut self, bytes: u64) {
        self.sent = (self.sent + bytes).min(self.total);
        if let Some((t, _)) = self.last {
            self.last = Some((t, self.sent));
        }
    }

    /// Adds bytes stored at time `now_ms` and updates the speed.
    pub fn sent(&mut self, now_ms: f64, bytes: u64) {
        self.sent = (self.sent + bytes).min(self.total);
        self.sample(now_ms);
    }

    /// Starts the clock (the first PUT begins).
    pub fn start(&mut self, now_ms: f64) {
        if self.last.is_none() {
            self.last = Some((now_ms, self.sent));
        }
    }

    /// The upload goes on after a pause at `now_ms`: speed and time left are measured from
    /// here, not averaged with the pause (which would read as a crawl).
    pub fn resumed(&mut self, now_ms: f64) {
        self.rate = None;
        if self.last.is_some() {
            self.last = Some((now_ms, self.sent));
        }
    }

    fn sample(&mut self, now_ms: f64) {
        let Some((t0, s0)) = self.last else {
            self.last = Some((now_ms, self.sent));
            return;
        };
        let dt = (now_ms - t0) / 1000.0;
        if dt <= 0.0 {
            return;
        }
        let inst = (self.sent - s0) as f64 / dt;
        let alpha = 1.0 - (-dt / TAU_SECS).exp();
        self.rate = Some(match self.rate {
            Some(r) => r + alpha * (inst - r),
            None => inst,
        });
        self.last = Some((now_ms, self.sent));
    }

    pub fn snapshot(&self) -> Snapshot {
        let rate = self.rate.unwrap_or(0.0);
        let left = (self.total - self.sent) as f64;
        let eta_secs = if self.sent >= self.total { Some(0.0) } else { (rate > 0.0).then(|| left / rate) };
        Snapshot { total: self.total, hashed: self.hashed, sent: self.sent, bytes_per_sec: rate, eta_secs }
    }
}

/// Delay before retry number `attempt` (0-based): exponential from 500 ms, capped at 30 s,
/// with full jitter (`random` in [0, 1)) so many clients do not retry in step.
pub fn backoff_ms(attempt: u32, random: f64) -> f64 {
    let cap = (500.0 * 2f64.powi(attempt.min(16) as i32)).min(30_000.0);
    (cap * random.clamp(0.0, 1.0)).max(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_backwards_and_smooths() {
        // 20 s of parts: long against the 3 s smoothing, so the first samples are forgotten.
        let mut p = Progress::new(1000 * 8);
        p.start(0.0);
        let mut last = p.snapshot();
        let mut t = 0.0;
        for i in 0..1000u32 {
            // Parts finish at an uneven pace: 8 bytes every 10 or 30 ms.
            t += if i % 2 == 0 { 10.0 } else { 30.0 };
            p.sent(t, 8);
            p.hashed(8);
            let s = p.snapshot();
            assert!(s.sent >= last.sent && s.hashed >= last.hashed);
            last = s;
        }
        let s = p.snapshot();
        assert_eq!((s.sent, s.eta_secs), (8000, Some(0.0)));
        // The average pace is 8 bytes / 20 ms = 400 B/s; the smoothed speed is near it.
        assert!((s.bytes_per_sec - 400.0).abs() < 20.0, "{}", s.bytes_per_sec);
        p.sent(t + 10.0, 1_000_000);
        assert_eq!(p.snapshot().sent, 8000, "never past the total");
    }

    #[test]
    fn resumed_bytes_are_not_speed() {
        let mut p = Progress::new(1000);
        p.already_sent(900);
        p.start(0.0);
        p.sent(1000.0, 10);
        let s = p.snapshot();
        assert_eq!(s.sent, 910);
        assert!((s.bytes_per_sec - 10.0).abs() < 1e-9);
        assert!((s.eta_secs.unwrap() - 9.0).abs() < 1e-9);
    }

    #[test]
    fn a_pause_is_not_slowness() {
        let mut p = Progress::new(100_000);
        p.start(0.0);
        for i in 1..=10 {
            p.sent(f64::from(i) * 100.0, 100); // 1,000 B/s
        }
        // A minute paused, then the same pace again.
        let mut paused = p.clone();
        paused.sent(61_100.0, 100);
        assert!(paused.snapshot().bytes_per_sec < 10.0, "without resumed(), the pause drags the speed down");
        p.resumed(61_000.0);
        p.sent(61_100.0, 100);
        let s = p.snapshot();
        assert!((s.bytes_per_sec - 1000.0).abs() < 1e-6, "{}", s.bytes_per_sec);
        assert!((s.eta_secs.unwrap() - 98.9).abs() < 1e-6, "{:?}", s.eta_secs);
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff_ms(0, 0.999), 499.5);
        assert_eq!(backoff_ms(3, 0.5), 2000.0);
        assert_eq!(backoff_ms(30, 1.0), 30_000.0);
        assert_eq!(backoff_ms(2, 0.0), 100.0);
    }
}
