//! `meshc demo`: the Istio Bookinfo walkthrough, end to end, on the policy embedded in the
//! binary. It checks and compiles `policies/bookinfo`, starts one small HTTP service per
//! endpoint of the table (each answers with its name and version), starts `mesh-proxy` on
//! the artifact, drives real HTTP traffic through it and reports, scenario by scenario, what
//! it observed: routing by user, the A/B split, the delay and abort faults, retries that mask
//! a flaky service (and a 4xx that is not retried), and the proxy's metrics. Everything runs
//! on loopback and stops before the demo returns.

mod client;
mod services;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mesh_table::spec::{RetrySpec, TableSpec};

use crate::check::{self, Settings};
use crate::compile;
use crate::sha256::{hex, sha256};
use client::Client;
use services::{MISSING_PATH, Services};

/// The Bookinfo policy repository, as in `policies/bookinfo/`.
pub const BOOKINFO: [(&str, &str); 3] = [
    (
        "policies/bookinfo/services.yaml",
        include_str!("../../policies/bookinfo/services.yaml"),
    ),
    (
        "policies/bookinfo/destination-rules.yaml",
        include_str!("../../policies/bookinfo/destination-rules.yaml"),
    ),
    (
        "policies/bookinfo/virtual-services.yaml",
        include_str!("../../policies/bookinfo/virtual-services.yaml"),
    ),
];

/// How the demo runs.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Requests per scenario that counts outcomes (the split, the abort, the retries).
    pub requests: u32,
    /// Keep the policy's fault delays as written (7 s in Bookinfo) instead of a tenth.
    pub full_delay: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            requests: 1000,
            full_delay: false,
        }
    }
}

/// Where the demo's two streams go: results to `out`, progress to the terminal.
pub struct Output<'a> {
    pub out: &'a mut dyn std::io::Write,
    /// Whether progress lines (to stderr) may be redrawn in place.
    pub live_progress: bool,
}

impl Output<'_> {
    fn result(&mut self, text: &str) {
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }
}

/// Runs the whole demo. Every service and the proxy it started are stopped before it returns,
/// whether it succeeded or not.
pub fn run(options: Options, output: &mut Output<'_>) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let started = Instant::now();
    let result = runtime.block_on(demo(options, output));
    // Dropping the runtime stops every task still running on it (the services' listeners).
    runtime.shutdown_timeout(Duration::from_secs(2));
    result?;
    output.result(&format!(
        "\nDone in {:.1} s; the services and the proxy are stopped.\n",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The fault delay the demo uses for a delay the policy writes as `ms`.
fn demo_delay_ms(ms: u32, options: Options) -> u32 {
    if options.full_delay { ms } else { ms / 10 }
}

async fn demo(options: Options, output: &mut Output<'_>) -> Result<(), String> {
    let n = options.requests.max(10);
    let steps = 10;
    let mut step = Step::new(steps, output.live_progress);

    // 1. Check.
    step.start("checking policies/bookinfo");
    let checked = check::check_sources(BOOKINFO, &Settings::default());
    output.result(&format!(
        "1. Check   policies/bookinfo: {} resources, {} errors, {} warnings\n",
        checked.summary.resources, checked.summary.errors, checked.summary.warnings
    ));

    // 2. Build. The artifact is compiled exactly as `meshc build` does; the demo then adapts
    // the compiled model only where the report says so (a shorter delay, moved ports).
    step.start("compiling the routing table");
    let mut spec = compile::table_spec(&checked).map_err(|e| e.to_string())?;
    let policy_bytes = mesh_table::encode(&spec).map_err(|e| e.to_string())?;
    output.result(&format!(
        "2. Build   {} bytes, format v{}, content hash {}: {} virtual hosts, {} routes, {} clusters\n",
        policy_bytes.len(),
        mesh_table::format::FORMAT_VERSION,
        &hex(&spec.content_hash)[..12],
        spec.virtual_hosts.len(),
        spec.virtual_hosts.iter().map(|v| v.routes.len()).sum::<usize>(),
        spec.clusters.len()
    ));

    // 3. Services and proxy.
    step.start("starting the Bookinfo services and mesh-proxy");
    let services = services::start_for(&mut spec).await?;
    let delays = shorten_delays(&mut spec, options);
    let with_retries = spec;
    let without_retries = retries_off(&with_retries, "ratings");
    let dir = tempfile::Builder::new()
        .prefix("meshc-demo")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let table_path = dir.path().join("bookinfo.meshtbl");
    publish(&table_path, &with_retries)?;
    let mut config = mesh_proxy::Config::new(&table_path);
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.admin = SocketAddr::from(([127, 0, 0, 1], 0));
    config.grace = Duration::from_secs(2);
    config.poll_interval = Duration::from_millis(100);
    let ready = Instant::now();
    let proxy = mesh_proxy::start(config)
        .await
        .map_err(|e| format!("mesh-proxy did not start: {e}"))?;
    let ready = ready.elapsed();
    let mut text = format!(
        "3. Start   {} Bookinfo services, each answering with its name and version:\n",
        services.0.len()
    );
    for service in &services.0 {
        let _ = write!(
            text,
            "             {} at {}",
            service.label(),
            service.bound
        );
        if service.bound != service.declared {
            let _ = write!(
                text,
                " (the policy's port {} was taken)",
                service.declared.port()
            );
        }
        text.push('\n');
    }
    let _ = writeln!(
        text,
        "          mesh-proxy: traffic {}, admin {} (table loaded and serving in {:.1} ms)",
        proxy.listen_addr,
        proxy.admin_addr,
        ready.as_secs_f64() * 1000.0
    );
    output.result(&text);

    let client = Client::new(proxy.listen_addr);
    let outcome = scenarios(
        &client,
        &proxy,
        &services,
        &table_path,
        &with_retries,
        &without_retries,
        delays,
        n,
        &mut step,
        output,
    )
    .await;
    step.start("stopping the proxy and the services");
    proxy.shutdown().await;
    services.stop();
    step.done();
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn scenarios(
    client: &Client,
    proxy: &mesh_proxy::Running,
    services: &Services,
    table_path: &std::path::Path,
    with_retries: &TableSpec,
    without_retries: &TableSpec,
    delays: Vec<(u32, u32)>,
    n: u32,
    step: &mut Step,
    output: &mut Output<'_>,
) -> Result<(), String> {
    // 4. Request routing.
    let routing_n = (n / 5).max(10);
    step.start("request routing: anonymous and jason -> reviews");
    let anonymous = client
        .count("reviews:9080", "/reviews/0", &[], routing_n, step)
        .await?;
    let jason = client
        .count(
            "reviews:9080",
            "/reviews/0",
            &[("end-user", "jason")],
            routing_n,
            step,
        )
        .await?;
    output.result(&format!(
        "4. Request routing (reviews, {routing_n} requests each)\n   anonymous          -> {}\n   end-user: jason    -> {}\n",
        anonymous.summary(),
        jason.summary()
    ));

    // 5. A/B split.
    step.start("A/B test: signed-in users -> reviews v2/v3");
    let users = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    ];
    let mut ab = Counts::default();
    let per_user = n.div_ceil(users.len() as u32);
    for user in users {
        let counts = client
            .count(
                "reviews:9080",
                "/reviews/0",
                &[("end-user", user)],
                per_user,
                step,
            )
            .await?;
        ab.merge(counts);
    }
    let total = ab.total();
    let v2 = ab.get("reviews v2");
    let sigma = (f64::from(total) * 0.25).sqrt();
    let deviation = (f64::from(v2) - f64::from(total) / 2.0).abs();
    output.result(&format!(
        "5. A/B test (reviews, {total} requests from {} signed-in users other than jason)\n   {}\n   50/50 expected: {:.1}% v2, {} standard deviations from half ({})\n",
        users.len(),
        ab.summary(),
        100.0 * f64::from(v2) / f64::from(total.max(1)),
        format_args!("{:.1}", deviation / sigma.max(1.0)),
        if deviation <= 4.0 * sigma { "as expected" } else { "NOT as expected" }
    ));

    // 6. Faults.
    step.start("fault injection: delay for jason, abort for tester -> ratings");
    let mut text = String::from("6. Fault injection (ratings)\n");
    let mut observed = Vec::new();
    for _ in 0..3 {
        observed.push(
            client
                .get("ratings:9080", "/ratings/0", &[("end-user", "jason")])
                .await?
                .elapsed,
        );
        step.tick();
    }
    let mut others = Vec::new();
    for _ in 0..20 {
        others.push(client.get("ratings:9080", "/ratings/0", &[]).await?.elapsed);
        step.tick();
    }
    others.sort();
    let (policy_ms, demo_ms) = delays.first().copied().unwrap_or((0, 0));
    let ms_list: Vec<String> = observed
        .iter()
        .map(|d| format!("{}", d.as_millis()))
        .collect();
    let _ = writeln!(
        text,
        "   jason:  fixed delay {} ({}): observed {} ms; anonymous users: median {:.1} ms",
        format_ms(demo_ms),
        if demo_ms == policy_ms {
            "as the policy says".to_owned()
        } else {
            format!(
                "the policy's {} shortened; --full-delay keeps it",
                format_ms(policy_ms)
            )
        },
        ms_list.join(", "),
        others
            .get(others.len() / 2)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
    let tester = client
        .count(
            "ratings:9080",
            "/ratings/0",
            &[("end-user", "tester")],
            n,
            step,
        )
        .await?;
    let aborted = tester.get("HTTP 500 (fault)");
    let _ = writeln!(
        text,
        "   tester: abort with HTTP 500 for 50%: {aborted}/{} aborted ({:.1}%), the rest: {}",
        tester.total(),
        100.0 * f64::from(aborted) / f64::from(tester.total().max(1)),
        tester.summary_without("HTTP 500 (fault)")
    );
    output.result(&text);

    // 7. Retries.
    let ratings = services
        .find("ratings", "v1")
        .ok_or("the policy has no ratings v1 endpoint")?;
    ratings.behaviour.flaky.store(true, Ordering::Relaxed);
    step.start("retries: ratings v1 fails every other request; policy without retries");
    swap_table(proxy, table_path, without_retries).await?;
    let before = ratings.behaviour.hits.load(Ordering::Relaxed);
    // One request at a time, so that "every other request" is exact: a first try that
    // fails is followed by a retry that succeeds.
    let off = client
        .count_with("ratings:9080", "/ratings/0", &[], n, 1, step)
        .await?;
    let off_hits = ratings.behaviour.hits.load(Ordering::Relaxed) - before;
    step.start("retries: the policy's retries");
    swap_table(proxy, table_path, with_retries).await?;
    let before = ratings.behaviour.hits.load(Ordering::Relaxed);
    let on = client
        .count_with("ratings:9080", "/ratings/0", &[], n, 1, step)
        .await?;
    let on_hits = ratings.behaviour.hits.load(Ordering::Relaxed) - before;
    let before = ratings.behaviour.hits.load(Ordering::Relaxed);
    let missing = client
        .get("ratings:9080", &format!("/ratings{MISSING_PATH}"), &[])
        .await?;
    let missing_hits = ratings.behaviour.hits.load(Ordering::Relaxed) - before;
    ratings.behaviour.flaky.store(false, Ordering::Relaxed);
    let retry = retry_of(with_retries, "ratings");
    output.result(&format!(
        concat!(
            "7. Retries (ratings v1 now answers 503 to every other request)\n",
            "   without retries (table hot-swapped to `attempts: 0`): {}/{} succeeded ({:.1}%), ratings saw {} requests\n",
            "   with the policy's retries ({}): {}/{} succeeded ({:.1}%), ratings saw {} requests\n",
            "   a 404 is not retried: the client got {}, ratings saw {} request{}\n",
        ),
        off.get("ratings v1"),
        off.total(),
        off.percent("ratings v1"),
        off_hits,
        retry,
        on.get("ratings v1"),
        on.total(),
        on.percent("ratings v1"),
        on_hits,
        missing.status,
        missing_hits,
        if missing_hits == 1 { "" } else { "s" }
    ));

    // 8. Metrics.
    step.start("reading the proxy's metrics");
    let metrics = client.admin(proxy.admin_addr, "/metrics").await?;
    if metrics.status != 200 {
        return Err(format!(
            "the admin port answered {} to /metrics",
            metrics.status
        ));
    }
    output.result(&format!(
        "8. Metrics (http://{}/metrics, Istio's names)\n{}",
        proxy.admin_addr,
        summarize_metrics(&metrics.body)?
    ));
    Ok(())
}

/// The retry policy of the catch-all route of `host`, as the report names it.
fn retry_of(spec: &TableSpec, host: &str) -> String {
    spec.virtual_hosts
        .iter()
        .filter(|v| v.domains.iter().any(|d| d == host))
        .flat_map(|v| &v.routes)
        .filter(|r| r.matches.is_empty())
        .filter_map(|r| r.retries.as_ref())
        .find(|r| r.attempts > 0)
        .map_or_else(
            || "none".to_owned(),
            |r| {
                format!(
                    "{} attempts on {}",
                    r.attempts,
                    if r.retry_on.is_empty() {
                        "the default conditions".to_owned()
                    } else {
                        r.retry_on.join(",")
                    }
                )
            },
        )
}

/// Shortens every fault delay unless the options keep them; returns (policy, demo) delays.
fn shorten_delays(spec: &mut TableSpec, options: Options) -> Vec<(u32, u32)> {
    let mut delays = Vec::new();
    for route in spec.virtual_hosts.iter_mut().flat_map(|v| &mut v.routes) {
        if let Some((ms, _)) = route.fault.as_mut().and_then(|f| f.delay.as_mut()) {
            let shorter = demo_delay_ms(*ms, options);
            delays.push((*ms, shorter));
            *ms = shorter;
        }
    }
    delays
}

/// The same table with retries turned off on every route of `host`, under its own content
/// hash so the proxy and `/table` can tell the two apart.
fn retries_off(spec: &TableSpec, host: &str) -> TableSpec {
    let mut spec = spec.clone();
    for vh in &mut spec.virtual_hosts {
        if vh.domains.iter().any(|d| d == host) {
            for route in &mut vh.routes {
                route.retries = Some(RetrySpec {
                    attempts: 0,
                    ..RetrySpec::default()
                });
            }
        }
    }
    let mut input = spec.content_hash.to_vec();
    input.extend_from_slice(b"meshc demo: retries off");
    spec.content_hash = sha256(&input);
    spec
}

/// Encodes and publishes a table where the proxy watches it (temp file, then rename).
fn publish(path: &std::path::Path, spec: &TableSpec) -> Result<(), String> {
    let bytes = mesh_table::encode(spec).map_err(|e| e.to_string())?;
    crate::emit::write_atomically(path, &bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Publishes `spec` and waits until the proxy serves it.
async fn swap_table(
    proxy: &mesh_proxy::Running,
    path: &std::path::Path,
    spec: &TableSpec,
) -> Result<(), String> {
    publish(path, spec)?;
    proxy.reload();
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.shared.current.load().table.info().content_hash != spec.content_hash {
        if Instant::now() > deadline {
            return Err("the proxy did not load the new table within 10 s".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn format_ms(ms: u32) -> String {
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

/// Outcomes by what answered: `reviews v2`, `HTTP 500 (fault)`, `HTTP 503`.
#[derive(Default)]
pub struct Counts(BTreeMap<String, u32>);

impl Counts {
    fn add(&mut self, outcome: String) {
        *self.0.entry(outcome).or_default() += 1;
    }

    fn merge(&mut self, other: Counts) {
        for (k, v) in other.0 {
            *self.0.entry(k).or_default() += v;
        }
    }

    fn get(&self, outcome: &str) -> u32 {
        self.0.get(outcome).copied().unwrap_or(0)
    }

    fn total(&self) -> u32 {
        self.0.values().sum()
    }

    fn percent(&self, outcome: &str) -> f64 {
        100.0 * f64::from(self.get(outcome)) / f64::from(self.total().max(1))
    }

    fn summary(&self) -> String {
        self.summary_without("")
    }

    fn summary_without(&self, skip: &str) -> String {
        let total = self.total();
        let parts: Vec<String> = self
            .0
            .iter()
            .filter(|(k, _)| k.as_str() != skip)
            .map(|(k, v)| format!("{k} {v}/{total}"))
            .collect();
        parts.join(", ")
    }
}

/// Progress on stderr: a line per step, and a live request counter on a terminal.
pub struct Step {
    index: u32,
    total: u32,
    live: bool,
    started: Instant,
    pub(crate) sent: Arc<AtomicU64>,
    last_draw: Instant,
}

impl Step {
    fn new(total: u32, live: bool) -> Step {
        Step {
            index: 0,
            total,
            live,
            started: Instant::now(),
            sent: Arc::new(AtomicU64::new(0)),
            last_draw: Instant::now(),
        }
    }

    fn start(&mut self, what: &str) {
        self.clear();
        self.index += 1;
        self.started = Instant::now();
        self.sent.store(0, Ordering::Relaxed);
        eprintln!("[{}/{}] {what}", self.index.min(self.total), self.total);
    }

    /// One more request answered (sequential scenarios; concurrent ones count in `sent`).
    fn tick(&mut self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.draw();
    }

    /// Redraws the live counter, at most ten times a second.
    fn draw(&mut self) {
        if !self.live || self.last_draw.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last_draw = Instant::now();
        let mut stderr = std::io::stderr();
        let _ = write!(
            stderr,
            "\r      {} requests, {:.1} s",
            self.sent.load(Ordering::Relaxed),
            self.started.elapsed().as_secs_f64()
        );
        let _ = stderr.flush();
    }

    fn clear(&mut self) {
        if self.live && self.sent.load(Ordering::Relaxed) > 0 {
            eprint!("\r\x1b[2K");
        }
    }

    fn done(&mut self) {
        self.clear();
    }
}

/// Whether stderr is a terminal (for live progress).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// A short account of `istio_requests_total` by destination and response code, and of the
/// proxy's own counters, from a Prometheus text scrape.
fn summarize_metrics(text: &str) -> Result<String, String> {
    let mut requests: BTreeMap<(String, String, String, String), f64> = BTreeMap::new();
    // (metric name, the `result` label) -> sum over the other labels.
    let mut own: BTreeMap<(String, String), f64> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let label = |key: &str| label_value(labels, key).unwrap_or_default();
        if name == "istio_requests_total" {
            *requests
                .entry((
                    label("destination_service_name"),
                    label("destination_version"),
                    label("response_code"),
                    label("response_flags"),
                ))
                .or_default() += value;
        } else if name.starts_with("mesh_proxy_") {
            *own.entry((name.to_owned(), label("result"))).or_default() += value;
        }
    }
    if requests.is_empty() {
        return Err("the proxy's /metrics has no istio_requests_total series".to_owned());
    }
    let mut out = String::from(
        "   istio_requests_total, by destination_service_name, destination_version, response_code, response_flags:\n",
    );
    for ((service, version, code, flags), value) in &requests {
        let _ = writeln!(
            out,
            "     {:<12} {:<8} {:>4} {:<6} {value:>7}",
            if service.is_empty() { "-" } else { service },
            if version.is_empty() { "-" } else { version },
            code,
            flags
        );
    }
    let get = |name: &str, result: &str| {
        own.get(&(format!("mesh_proxy_{name}"), result.to_owned()))
            .copied()
            .unwrap_or(0.0)
    };
    let _ = writeln!(
        out,
        "   mesh-proxy: table reloads {} ok, {} failed; upstream retries {}; upstream connections opened {}; outlier ejections {}; access log lines dropped {}",
        get("table_reloads_total", "ok"),
        get("table_reloads_total", "failed"),
        get("upstream_retries_total", ""),
        get("upstream_connections_opened_total", ""),
        get("outlier_ejections_total", ""),
        get("access_log_dropped_total", ""),
    );
    Ok(out)
}

/// The value of `key` in a Prometheus label set `a="x",b="y"` (values without escapes
/// beyond `\"` and `\\`, as label values from the table are).
fn label_value(labels: &str, key: &str) -> Option<String> {
    let mut rest = labels;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        if name.trim_start_matches(',').trim() == key {
            return Some(value);
        }
        rest = after[end..].trim_start_matches(',');
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_policy_is_the_repo_s() {
        for (path, text) in super::BOOKINFO {
            let on_disk = std::fs::read_to_string(
                concat!(env!("CARGO_MANIFEST_DIR"), "/../").to_owned() + path,
            )
            .unwrap();
            assert_eq!(on_disk, text, "{path}");
        }
    }

    #[test]
    fn label_values_are_read_from_a_label_set() {
        let labels =
            r#"reporter="source",destination_version="v2",response_code="200",odd="a\"b,c""#;
        assert_eq!(
            super::label_value(labels, "destination_version").as_deref(),
            Some("v2")
        );
        assert_eq!(super::label_value(labels, "odd").as_deref(), Some("a\"b,c"));
        assert_eq!(super::label_value(labels, "missing"), None);
    }

    #[test]
    fn a_scrape_is_summarized_by_destination() {
        let text = concat!(
            "# TYPE istio_requests_total counter\n",
            "istio_requests_total{destination_service_name=\"reviews\",destination_version=\"v2\",response_code=\"200\",response_flags=\"-\"} 7\n",
            "istio_requests_total{destination_service_name=\"reviews\",destination_version=\"v2\",response_code=\"200\",response_flags=\"-\",reporter=\"x\"} 3\n",
        );
        let summary = super::summarize_metrics(text).unwrap();
        assert!(summary.contains("reviews"), "{summary}");
        assert!(summary.contains(" 10"), "{summary}");
        assert!(super::summarize_metrics("# nothing\n").is_err());
    }
}
