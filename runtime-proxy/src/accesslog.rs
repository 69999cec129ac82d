//! The access log: one JSON object per request and line, to stdout or a file, written by a
//! dedicated thread. The request path only hands its facts to a bounded queue; when the
//! queue is full the entry is dropped and counted (`mesh_proxy_access_log_dropped_total`),
//! so a slow disk or pipe never slows requests down.
//!
//! Field names follow Envoy's and Istio's JSON access log (`start_time`, `response_code`,
//! `response_flags`, `bytes_received`, ...), so Fluentd or Fluent Bit can ship the lines to
//! Elasticsearch as they are.

use std::fmt::{self, Write as _};
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

use crate::observe::RequestFacts;

/// Where access log lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessLogTarget {
    Off,
    Stdout,
    File(PathBuf),
}

/// One finished request, as queued for the writer.
pub struct Entry {
    pub facts: Box<RequestFacts>,
    pub duration: Duration,
    pub bytes_received: u64,
    pub bytes_sent: u64,
}

/// The request path's side: a bounded queue to the writer thread.
pub struct AccessLog {
    tx: SyncSender<Entry>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Opens the target (a file is created or appended to) and starts the writer thread. The
    /// thread ends, after writing what is queued, when the last `AccessLog` is dropped; the
    /// receiver then hears that it is done.
    pub fn start(
        target: &AccessLogTarget,
        queue: usize,
        dropped: Arc<AtomicU64>,
    ) -> Result<Option<(AccessLog, oneshot::Receiver<()>)>, std::io::Error> {
        let out: Box<dyn Write + Send> = match target {
            AccessLogTarget::Off => return Ok(None),
            AccessLogTarget::Stdout => Box::new(std::io::stdout()),
            AccessLogTarget::File(path) => Box::new(open(path)?),
        };
        let (tx, rx) = sync_channel(queue.max(1));
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("mesh-proxy-access-log".to_owned())
            .spawn(move || {
                write_loop(&rx, out);
                let _ = done_tx.send(());
            })?;
        Ok(Some((AccessLog { tx, dropped }, done_rx)))
    }

    /// Queues an entry; never blocks.
    pub fn submit(&self, entry: Entry) {
        match self.tx.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn open(path: &Path) -> Result<std::fs::File, std::io::Error> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("access log {}: {e}", path.display())))
}

/// How long the writer sleeps between drains of the queue. Polling (rather than blocking on
/// the queue) means a request never has to wake the writer: at 20 ms, a full 16,384-entry
/// queue still absorbs 800,000 requests per second.
const DRAIN_INTERVAL: Duration = Duration::from_millis(20);

/// Drains the queue, writes the lines and flushes, until every sender is gone.
fn write_loop(rx: &Receiver<Entry>, out: Box<dyn Write + Send>) {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    let mut line = String::with_capacity(1024);
    loop {
        let mut wrote = false;
        let disconnected = loop {
            match rx.try_recv() {
                Ok(entry) => {
                    line.clear();
                    format_entry(&entry, &mut line);
                    drop(entry);
                    line.push('\n');
                    if let Err(error) = out.write_all(line.as_bytes()) {
                        tracing::warn!(%error, "access log write failed");
                    }
                    wrote = true;
                }
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        if wrote && let Err(error) = out.flush() {
            tracing::warn!(%error, "access log flush failed");
        }
        if disconnected {
            return;
        }
        std::thread::sleep(DRAIN_INTERVAL);
    }
}

/// Appends `s` as a JSON string literal; runs of characters that need no escape are copied
/// whole.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut plain_from = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..0x20 => "",
            _ => continue,
        };
        out.push_str(&s[plain_from..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escaped);
        }
        plain_from = i + 1;
    }
    out.push_str(&s[plain_from..]);
    out.push('"');
}

struct Object<'a> {
    out: &'a mut String,
    first: bool,
}

impl Object<'_> {
    /// Field names are constants that need no escaping.
    fn key(&mut self, key: &str) {
        self.out.push_str(if self.first { "\"" } else { ",\"" });
        self.first = false;
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    fn str(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(v) => json_str(self.out, v),
            None => self.out.push_str("null"),
        }
    }

    /// A string whose characters never need escaping (numbers, hex, flags, addresses).
    fn plain(&mut self, key: &str, value: impl fmt::Display) {
        self.key(key);
        let _ = write!(self.out, "\"{value}\"");
    }

    fn num(&mut self, key: &str, value: Option<u64>) {
        self.key(key);
        match value {
            Some(v) => {
                let _ = write!(self.out, "{v}");
            }
            None => self.out.push_str("null"),
        }
    }
}

fn protocol(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// The JSON object of one entry (no newline).
pub fn format_entry(entry: &Entry, out: &mut String) {
    let facts = &entry.facts;
    let table = &facts.loaded.table;
    let route = facts.route.and_then(|id| table.route(id));
    let cluster = facts.cluster.and_then(|id| table.cluster(id));
    let upstream_host = facts
        .cluster
        .and_then(|id| facts.loaded.cluster(id))
        .zip(facts.endpoint)
        .and_then(|(state, idx)| state.endpoints.get(idx))
        .map(|e| e.authority.as_str());
    let log = facts.log.as_ref();

    let mut o = Object { out, first: true };
    o.out.push('{');
    o.key("start_time");
    o.out.push('"');
    write_rfc3339_millis(o.out, facts.start_wall);
    o.out.push('"');
    o.str("method", Some(facts.method.as_str()));
    o.str("path", log.and_then(|l| l.path()));
    o.plain("protocol", protocol(facts.version));
    o.num("response_code", Some(u64::from(facts.status)));
    o.plain("response_flags", facts.flags);
    o.num("bytes_received", Some(entry.bytes_received));
    o.num("bytes_sent", Some(entry.bytes_sent));
    o.num("duration", Some(entry.duration.as_millis() as u64));
    o.num(
        "upstream_service_time",
        facts.upstream_time.map(|d| d.as_millis() as u64),
    );
    o.str("x_forwarded_for", log.and_then(|l| l.forwarded_for()));
    o.str("user_agent", log.and_then(|l| l.user_agent()));
    o.str("x_request_id", log.and_then(|l| l.request_id()));
    o.str("authority", log.and_then(|l| l.authority()));
    o.str("upstream_host", upstream_host);
    o.str("upstream_cluster", cluster.map(|c| c.name()));
    o.str("route_name", route.and_then(|r| r.name()));
    o.str("virtual_service", route.map(|r| r.vs_name()));
    o.str("destination_service", cluster.map(|c| c.host()));
    o.str("destination_subset", cluster.and_then(|c| c.subset()));
    o.num(
        "retry_attempts",
        Some(u64::from(facts.attempts.saturating_sub(1))),
    );
    o.plain("trace_id", format_args!("{:032x}", facts.trace.trace_id));
    o.plain("span_id", format_args!("{:016x}", facts.trace.span_id));
    match log {
        Some(l) => o.plain("downstream_remote_address", l.peer),
        None => o.str("downstream_remote_address", None),
    }
    o.out.push('}');
}

/// `2024-05-01T12:34:56.789Z` (RFC 3339, UTC, milliseconds).
#[cfg(test)]
fn rfc3339_millis(time: SystemTime) -> String {
    let mut out = String::with_capacity(24);
    write_rfc3339_millis(&mut out, time);
    out
}

fn write_rfc3339_millis(out: &mut String, time: SystemTime) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        since.subsec_millis()
    );
}

fn is_leap(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// Days since 1970-01-01 -> (year, month, day), Gregorian. Every 400 years hold the same
/// 146,097 days, so whole cycles are skipped and at most 400 years are walked.
pub(crate) fn civil_from_days(days: u64) -> (u64, u32, u32) {
    let mut year = 1970 + 400 * (days / 146_097);
    let mut left = days % 146_097;
    loop {
        let in_year = if is_leap(year) { 366 } else { 365 };
        if left < in_year {
            break;
        }
        left -= in_year;
        year += 1;
    }
    let february = if is_leap(year) { 29 } else { 28 };
    let lengths = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 1;
    for length in lengths {
        if left < length {
            break;
        }
        left -= length;
        month += 1;
    }
    (year, month, left as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123); // leap day 2000
        assert_eq!(rfc3339_millis(t), "2000-02-29T00:00:00.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339_millis(t), "2023-11-14T22:13:20.000Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(rfc3339_millis(t), "2099-12-31T23:59:59.000Z");
    }

    #[test]
    fn every_day_to_2110_follows_the_previous_one() {
        let mut previous = civil_from_days(0);
        assert_eq!(previous, (1970, 1, 1));
        let days_in = |y: u64, m: u32| match m {
            2 if is_leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        for days in 1..(140 * 366) {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = previous;
            let expected = if pd < days_in(py, pm) {
                (py, pm, pd + 1)
            } else if pm < 12 {
                (py, pm + 1, 1)
            } else {
                (py + 1, 1, 1)
            };
            assert_eq!((y, m, d), expected, "day {days}");
            previous = (y, m, d);
        }
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        json_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\u0001é\"");
        let parsed: String = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }
}
