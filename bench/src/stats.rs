//! Latency histograms (HdrHistogram, microsecond resolution), the shared
//! clock, and the progress ticker that long phases print on stderr.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The process-wide time origin: every timestamp the harness records is
/// nanoseconds since it, so times taken on different tasks compare.
pub(crate) fn now_ns() -> u64 {
    epoch().0.elapsed().as_nanos() as u64
}

fn epoch() -> &'static (Instant, std::time::SystemTime) {
    static EPOCH: OnceLock<(Instant, std::time::SystemTime)> = OnceLock::new();
    EPOCH.get_or_init(|| (Instant::now(), std::time::SystemTime::now()))
}

/// A [`now_ns`] timestamp as microseconds since the Unix epoch (to compare
/// with PostgreSQL's `clock_timestamp()` on the same machine).
pub(crate) fn unix_us(ns: u64) -> i64 {
    let base = epoch().1.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros() as i64;
    base + (ns / 1000) as i64
}

/// A latency histogram in microseconds (1 µs to 1 h, 3 significant digits).
#[derive(Clone)]
pub(crate) struct Hist(Histogram<u64>);

impl Hist {
    pub fn new() -> Hist {
        Hist(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"))
    }

    pub fn record(&mut self, d: Duration) {
        self.record_us(d.as_micros() as u64);
    }

    pub fn record_us(&mut self, us: u64) {
        self.0.saturating_record(us.max(1));
    }

    pub fn merge(&mut self, other: &Hist) {
        let _ = self.0.add(&other.0);
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// The value at quantile `q` (0..=1), in milliseconds.
    pub fn ms_at(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.0.max() as f64 / 1000.0
    }

    pub fn min_ms(&self) -> f64 {
        self.0.min() as f64 / 1000.0
    }
}

/// Prints `label: elapsed/total s, N unit` on stderr every second until
/// stopped.
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<()>,
}

impl Ticker {
    pub fn start(label: &str, counter: Arc<AtomicU64>, unit: &'static str, start: Instant, total: Duration) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let label = label.to_owned();
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                eprintln!(
                    "    {label}: {:>4.1}/{:.0} s, {} {unit}",
                    start.elapsed().as_secs_f64(),
                    total.as_secs_f64(),
                    counter.load(Ordering::Relaxed)
                );
            }
        });
        Ticker { stop, handle }
    }

    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.abort();
        let _ = self.handle.await;
    }
}

/// The median of some values (0 when empty).
pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// CPU time a process has used, split into user and system (kernel) time,
/// in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Cpu {
    pub user: f64,
    pub sys: f64,
}

impl Cpu {
    pub fn total(self) -> f64 {
        self.user + self.sys
    }
}

impl std::ops::Add for Cpu {
    type Output = Cpu;
    fn add(self, o: Cpu) -> Cpu {
        Cpu { user: self.user + o.user, sys: self.sys + o.sys }
    }
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, o: Cpu) -> Cpu {
        Cpu { user: self.user - o.user, sys: self.sys - o.sys }
    }
}

impl std::iter::Sum for Cpu {
    fn sum<I: Iterator<Item = Cpu>>(iter: I) -> Cpu {
        iter.fold(Cpu::default(), |a, b| a + b)
    }
}

/// CPU time (user and system) a process has used so far, from
/// `/proc/<pid>/stat` (`None` for `self` means this process).
pub(crate) fn cpu_times(pid: Option<u32>) -> Option<Cpu> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    parse_stat(&std::fs::read_to_string(path).ok()?)
}

/// utime and stime of a `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<Cpu> {
    // Fields after the command name (which may contain spaces) start at
    // field 3; utime and stime are fields 14 and 15 (clock ticks, 100/s).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(Cpu { user: utime / 100.0, sys: stime / 100.0 })
}

/// CPU time (user + system) a process has used so far, in seconds.
pub(crate) fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    cpu_times(pid).map(Cpu::total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = Hist::new();
        for us in 1..=1000 {
            h.record_us(us);
        }
        assert!((h.ms_at(0.5) - 0.5).abs() < 0.01);
        assert!((h.max_ms() - 1.0).abs() < 0.01);
    }

    #[test]
    fn stat_fields() {
        // A command name with spaces and parentheses; utime 250, stime 75.
        let line = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0 1 2 3";
        assert_eq!(parse_stat(line), Some(Cpu { user: 2.5, sys: 0.75 }));
        assert_eq!(parse_stat("4242 (x) S 1"), None);
    }

    #[test]
    fn clocks_agree() {
        let ns = now_ns();
        let unix = unix_us(ns);
        let sys = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
        assert!((sys - unix).abs() < 1_000_000);
    }
}
