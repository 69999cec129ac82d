//! Generated policy repositories for benchmarks and scale tests.

/// A repo of `n_services` services, each with a VirtualService (a header route, a prefix
/// route with a fault, a default route with retries), a DestinationRule with two subsets
/// and a ServiceEntry with two labelled static endpoints. Files hold 100 services each.
pub fn scale_repo(n_services: usize) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for first in (0..n_services).step_by(100) {
        let mut text = String::new();
        for i in first..(first + 100).min(n_services) {
            text.push_str(&service(i));
        }
        files.push((format!("svc-{:05}.yaml", first / 100), text));
    }
    files
}

fn service(i: usize) -> String {
    format!(
        "---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: svc-{i}
spec:
  hosts:
  - svc-{i}
  http:
  - name: canary-users
    match:
    - headers:
        x-user:
          exact: user-{i}
    route:
    - destination:
        host: svc-{i}
        subset: v2
  - name: api
    match:
    - uri:
        prefix: /api/v{i}/
    fault:
      delay:
        percentage:
          value: 1
        fixedDelay: 100ms
    timeout: 2s
    route:
    - destination:
        host: svc-{i}
        subset: v1
      weight: 90
    - destination:
        host: svc-{i}
        subset: v2
      weight: 10
  - name: default
    timeout: 3s
    retries:
      attempts: 2
      perTryTimeout: 1s
      retryOn: 5xx,connect-failure
    route:
    - destination:
        host: svc-{i}
        subset: v1
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: svc-{i}
spec:
  host: svc-{i}
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: svc-{i}
spec:
  hosts:
  - svc-{i}.default.svc.cluster.local
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - number: 80
    name: http
    protocol: HTTP
  endpoints:
  - address: 10.{a}.{b}.1
    labels:
      version: v1
  - address: 10.{a}.{b}.2
    labels:
      version: v2
",
        a = i / 250,
        b = i % 250
    )
}

/// One VirtualService with `n_rules` prefix rules on one host (none shadows another), for
/// the cost of the shadowing analysis.
pub fn one_host_repo(n_rules: usize) -> String {
    let mut text = String::from(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: api\nspec:\n  ports:\n  - {name: http, port: 80}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: api\nspec:\n  hosts: [api]\n  http:\n",
    );
    for i in 0..n_rules {
        text.push_str(&format!(
            "  - name: r{i}\n    match:\n    - uri: {{prefix: /v{i}/}}\n      headers: {{x-tenant: {{exact: t{i}}}}}\n    route:\n    - destination: {{host: api}}\n"
        ));
    }
    text.push_str("  - route:\n    - destination: {host: api}\n");
    text
}
