//! `meshc demo`: the Bookinfo walkthrough on the policy embedded in the binary, from YAML
//! to decisions. It checks and compiles `policies/bookinfo`, loads the artifact through the
//! proxy's checked reader, and drives requests through the proxy's executor, counting what
//! happens over many requests (the split and the fault percentages are observed, not
//! restated).

use std::fmt::Write as _;

use mesh_table::{ActionDecision, Decision, HeaderList, RequestView, Table};

use crate::check::{self, Settings};
use crate::compile;

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

/// Runs the demo with `requests` requests per scenario; returns the report, or why it failed.
pub fn run(requests: u32, mut progress: impl FnMut(&str)) -> Result<String, String> {
    let mut out = String::new();
    progress("checking policies/bookinfo");
    let checked = check::check_sources(BOOKINFO, &Settings::default());
    let _ = writeln!(
        out,
        "1. meshc check policies/bookinfo: {} resources, {} errors, {} warnings",
        checked.summary.resources, checked.summary.errors, checked.summary.warnings
    );
    progress("compiling the routing table");
    let bytes = compile::build(&checked).map_err(|e| e.to_string())?;
    let aligned = mesh_table::AlignedBytes::new(&bytes);
    let table =
        Table::load(aligned.as_bytes()).map_err(|e| format!("the artifact does not load: {e}"))?;
    let info = table.info();
    let routes: usize = table.virtual_hosts().map(|v| v.routes().len()).sum();
    let _ = writeln!(
        out,
        "2. meshc build: {} bytes, format v{}, {} virtual hosts, {} routes, {} clusters; loaded and verified",
        bytes.len(),
        info.version,
        table.virtual_hosts().len(),
        routes,
        table.clusters().len()
    );
    let _ = writeln!(
        out,
        "3. {requests} requests per scenario through the executor the proxy runs:"
    );
    let scenarios: [(&str, &str, Option<&str>); 5] = [
        ("anonymous user -> reviews", "reviews", None),
        ("jason -> reviews", "reviews", Some("jason")),
        (
            "signed-in alice -> reviews (A/B test)",
            "reviews",
            Some("alice"),
        ),
        ("jason -> ratings (delay fault)", "ratings", Some("jason")),
        ("tester -> ratings (abort fault)", "ratings", Some("tester")),
    ];
    for (title, host, user) in scenarios {
        progress(title);
        let _ = writeln!(out, "   {title}: {}", observe(&table, host, user, requests));
    }
    Ok(out)
}

/// Sends `n` requests with different random draws and summarises the outcomes.
fn observe(table: &Table<'_>, host: &str, user: Option<&str>, n: u32) -> String {
    let pairs: Vec<(&str, &str)> = user.map(|u| ("end-user", u)).into_iter().collect();
    let headers = HeaderList(&pairs);
    let request = RequestView {
        authority: host,
        port: Some(9080),
        method: "GET",
        path: "/",
        query: None,
        scheme: "http",
        headers: &headers,
    };
    let mut by_subset: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
    let (mut delayed, mut aborted, mut delay_ms) = (0u32, 0u32, 0u32);
    let mut rule = String::new();
    for i in 0..n {
        // A fixed sequence of well-mixed draws: the demo's counts are reproducible.
        let random = splitmix64(u64::from(i));
        let Decision::Route(d) = table.decide(&request, random) else {
            return "no route".to_owned();
        };
        rule = d.route.name().unwrap_or("(unnamed)").to_owned();
        if let Some(ms) = d.fault.delay_ms {
            delayed += 1;
            delay_ms = ms;
        }
        if d.fault.abort.is_some() {
            aborted += 1;
            continue;
        }
        if let ActionDecision::Forward { cluster, .. } = d.action {
            *by_subset
                .entry(cluster.subset().unwrap_or("-").to_owned())
                .or_default() += 1;
        }
    }
    let mut parts = vec![format!("rule `{rule}`")];
    let split: Vec<String> = by_subset.iter().map(|(s, c)| format!("{s} {c}")).collect();
    parts.push(format!("forwarded to {}", split.join(", ")));
    if delayed > 0 {
        parts.push(format!("{delayed}/{n} delayed {delay_ms} ms"));
    }
    if aborted > 0 {
        parts.push(format!("{aborted}/{n} aborted with HTTP 500"));
    }
    parts.join("; ")
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
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
}
