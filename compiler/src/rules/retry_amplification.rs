//! `MESH0406` `retry-amplification`: retries multiplied along a chain of services.

use std::collections::{BTreeMap, BTreeSet};

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::source::Span;
use crate::typecheck::{Ir, VirtualService, host};

pub static RULE: Rule = Rule {
    code: "MESH0406",
    name: "retry-amplification",
    severity: Severity::Warning,
    summary: "retries along a chain of services multiply past the configured limit",
    doc: r#"## What it does
Routing rules do not say which service calls which, so the chains are declared, in
`meshc.toml`:
```toml
[analysis]
call-chains = [["productpage", "reviews", "ratings"]]
max-retry-amplification = 10    # the default
```
or on the VirtualService of a caller, with the annotation `meshc.dev/calls` listing the
hosts the service calls (`meshc.dev/calls: "reviews, details"`); meshc follows these edges
from services nobody calls, and checks the worst path. Names in `meshc.toml` are resolved
like destination hosts in the default namespace; names in the annotation in the
VirtualService's namespace. Each hop's
retries come from the mesh VirtualService for that host: the largest `retries.attempts`
among its rules, and Istio's default of 2 retries for a rule without `retries` or a host
without VirtualService. A request entering the chain can reach the last service
(1 + a1) × (1 + a2) × ... times when every hop fails; the rule reports chains where that
product is above `max-retry-amplification`, at the VirtualService of the hop that retries
most. Chains whose hosts have no VirtualService in the repo cannot be located in a file
and are not reported.

## Why is this bad
When the last service slows down, every layer retries its callee: a 3-hop chain with 2
retries each sends 27 requests per user request to the struggling service, which turns a
brown-out into an outage.

## Example
```yaml
# productpage, reviews and ratings each: retries: {attempts: 3}
```
4 × 4 × 4 = 64 attempts reach `ratings`.

## Use instead
Retry at one layer (usually the edge), and set `attempts: 0` or small values below it; or
use a retry budget.

## References
- Envoy retry budgets; Google SRE book, "Handling Overload" (retry amplification)
"#,
};

/// Istio's retries for a rule without a `retries` block (`defaultHttpRetryPolicy`).
const ISTIO_DEFAULT_ATTEMPTS: i64 = 2;
const DEFAULT_LIMIT: u64 = 10;

struct Hop<'a> {
    name: String,
    vs: Option<&'a VirtualService>,
    attempts: i64,
    span: Option<Span>,
    default: bool,
}

/// The annotation on a caller's VirtualService that lists the hosts the service calls.
pub const CALLS_ANNOTATION: &str = "meshc.dev/calls";

/// Chains from the `meshc.dev/calls` annotations: from each host nobody calls, the path
/// with the most tries (cycles are cut).
fn annotated_chains(ir: &Ir) -> Vec<Vec<String>> {
    let mut calls: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for vs in ir.virtual_services.iter().filter(|vs| vs.is_mesh_bound()) {
        let Some(list) = vs.meta.annotations.get(CALLS_ANNOTATION) else {
            continue;
        };
        let callees: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| host::resolve(c, &vs.meta.namespace))
            .collect();
        for h in &vs.hosts {
            calls
                .entry(h.fqdn.clone())
                .or_default()
                .extend(callees.iter().cloned());
        }
    }
    let called: BTreeSet<&String> = calls.values().flatten().collect();
    let roots: Vec<&String> = calls.keys().filter(|h| !called.contains(h)).collect();
    let tries = |h: &str| -> u64 { 1 + hop(ir, h, h).attempts as u64 };
    let mut chains = Vec::new();
    for root in roots {
        // Depth-first search for the path with the largest product of tries.
        let mut best: (u64, Vec<String>) = (0, Vec::new());
        let mut stack: Vec<(Vec<String>, u64)> = vec![(vec![root.clone()], tries(root))];
        let mut steps = 0;
        while let Some((path, product)) = stack.pop() {
            steps += 1;
            if steps > 100_000 {
                break;
            }
            let last = path.last().expect("paths are never empty");
            let next: Vec<&String> = calls
                .get(last)
                .into_iter()
                .flatten()
                .filter(|c| !path.contains(c))
                .collect();
            if next.is_empty() && product > best.0 {
                best = (product, path.clone());
            }
            for c in next {
                let mut p = path.clone();
                p.push(c.clone());
                stack.push((p, product.saturating_mul(tries(c))));
            }
        }
        if best.1.len() > 1 {
            chains.push(best.1);
        }
    }
    chains
}

fn hop<'a>(ir: &'a Ir, name: &str, fqdn: &str) -> Hop<'a> {
    let vs = ir
        .virtual_services
        .iter()
        .find(|vs| vs.is_mesh_bound() && vs.hosts.iter().any(|h| h.fqdn == fqdn));
    let mut hop = Hop {
        name: name.to_owned(),
        vs,
        attempts: ISTIO_DEFAULT_ATTEMPTS,
        span: None,
        default: true,
    };
    if let Some(vs) = vs {
        let worst = vs
            .http
            .iter()
            .map(|r| match &r.retries {
                Some(retries) => (
                    retries.attempts().max(0),
                    retries.attempts.as_ref().map_or(retries.span, |a| a.span),
                    false,
                ),
                None => (ISTIO_DEFAULT_ATTEMPTS, r.anchor(), true),
            })
            .max_by_key(|(a, _, _)| *a);
        if let Some((attempts, span, default)) = worst {
            hop.attempts = attempts;
            hop.span = Some(span);
            hop.default = default;
        }
    }
    hop
}

pub fn check(ir: &Ir, settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    let analysis = &settings.config.analysis;
    let limit = analysis
        .max_retry_amplification
        .map_or(DEFAULT_LIMIT, u64::from);
    let ns = settings.default_namespace();
    let mut chains: Vec<Vec<String>> = analysis
        .call_chains
        .iter()
        .map(|c| c.iter().map(|n| host::resolve(n, ns)).collect())
        .collect();
    chains.extend(annotated_chains(ir));
    for chain in &chains {
        let hops: Vec<Hop> = chain
            .iter()
            .map(|fqdn| {
                let name = fqdn
                    .strip_suffix(&format!(".{ns}.svc.cluster.local"))
                    .unwrap_or(fqdn)
                    .to_owned();
                hop(ir, &name, fqdn)
            })
            .collect();
        let chain: Vec<&str> = hops.iter().map(|h| h.name.as_str()).collect();
        let total: u64 = hops
            .iter()
            .map(|h| 1 + h.attempts as u64)
            .fold(1u64, u64::saturating_mul);
        if total <= limit {
            continue;
        }
        let Some(worst) = hops
            .iter()
            .filter(|h| h.vs.is_some() && h.span.is_some())
            .max_by_key(|h| h.attempts)
        else {
            continue;
        };
        let (Some(vs), Some(span)) = (worst.vs, worst.span) else {
            continue;
        };
        let factors: Vec<String> = hops.iter().map(|h| (1 + h.attempts).to_string()).collect();
        let defaults: Vec<&str> = hops
            .iter()
            .filter(|h| h.default)
            .map(|h| h.name.as_str())
            .collect();
        let mut help = "retry at one layer and keep `attempts` low (or 0) below it".to_owned();
        if !defaults.is_empty() {
            help = format!(
                "{help}; `{}` {} Istio's default of 2 retries",
                defaults.join("`, `"),
                if defaults.len() == 1 { "uses" } else { "use" }
            );
        }
        let mut d = vs
            .meta
            .diag(
                &RULE,
                span,
                format!(
                    "retries along `{}` can send up to {total} requests to `{}` ({} tries), over the limit of {limit}",
                    chain.join("` -> `"),
                    chain.last().copied().unwrap_or(""),
                    factors.join(" × ")
                ),
            )
            .with_help(help);
        for hop in hops.iter().filter(|h| !std::ptr::eq(*h, worst)) {
            if let (Some(other), Some(s)) = (hop.vs, hop.span) {
                d = d.with_label(
                    other.meta.file,
                    s,
                    format!("`{}`: {} tries", hop.name, 1 + hop.attempts),
                );
            }
        }
        diagnostics.push(d);
    }
}
