//! Host names: resolution of short names and Istio's wildcard-aware comparisons
//! (`pkg/config/host/name.go`).

/// Resolves a host as Istio's analyzers do: lower case; a trailing dot dropped; a name
/// without dots is `name.<namespace>.svc.cluster.local`; `name.namespace` (one dot) is
/// `name.namespace.svc.cluster.local`; FQDNs, IP addresses and wildcards are kept.
pub fn resolve(host: &str, namespace: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.starts_with('*') || host.parse::<std::net::IpAddr>().is_ok() || host.is_empty() {
        return host;
    }
    match host.matches('.').count() {
        0 => format!("{host}.{namespace}.svc.cluster.local"),
        1 => format!("{host}.svc.cluster.local"),
        _ => host,
    }
}

pub fn is_wildcard(host: &str) -> bool {
    host.starts_with('*')
}

/// Whether `pattern` (a name or a wildcard) matches every name `name` stands for.
pub fn covers(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match (pattern.strip_prefix('*'), name.strip_prefix('*')) {
        (None, None) => pattern == name,
        (None, Some(_)) => false,
        // `*.foo.com` covers `a.foo.com` and `*.a.foo.com`, not `foo.com`.
        (Some(suffix), None) => name.len() > suffix.len() && name.ends_with(suffix),
        (Some(suffix), Some(name_suffix)) => name_suffix.ends_with(suffix),
    }
}

/// Whether two hosts can stand for a common name (Istio `Name.Matches`, used by V8).
pub fn overlaps(a: &str, b: &str) -> bool {
    covers(a, b) || covers(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution() {
        assert_eq!(resolve("reviews", "ns"), "reviews.ns.svc.cluster.local");
        assert_eq!(
            resolve("Reviews.prod", "ns"),
            "reviews.prod.svc.cluster.local"
        );
        assert_eq!(resolve("api.example.com", "ns"), "api.example.com");
        assert_eq!(resolve("*.example.com", "ns"), "*.example.com");
        assert_eq!(resolve("10.0.0.1", "ns"), "10.0.0.1");
        assert_eq!(
            resolve("a.b.svc.cluster.local.", "ns"),
            "a.b.svc.cluster.local"
        );
    }

    #[test]
    fn wildcards() {
        assert!(covers("*.foo.com", "a.foo.com"));
        assert!(!covers("*.foo.com", "foo.com"));
        assert!(covers("*", "anything"));
        assert!(covers("*.com", "*.foo.com"));
        assert!(!covers("*.foo.com", "*.com"));
        assert!(overlaps("*.foo.com", "*.com"));
        assert!(!overlaps("a.com", "b.com"));
        assert!(covers("*foo.com", "barfoo.com"));
    }
}
