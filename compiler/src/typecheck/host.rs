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

/// Istio's DNS-1123 label (`labels.IsDNS1123Label`): 1 to 63 letters, digits and `-`, not
/// starting or ending with `-`. Upper case is accepted, unlike Kubernetes.
pub fn is_dns1123_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Istio's first-label rule (`labels.IsWildcardDNS1123Label`): `*`, or a DNS-1123 label
/// optionally preceded by `*` or `*-` (`*foo`, `*-foo`), at most 63 characters in all.
fn is_wildcard_label(label: &str) -> bool {
    if label.len() > 63 {
        return false;
    }
    if label == "*" {
        return true;
    }
    let rest = label
        .strip_prefix("*-")
        .or_else(|| label.strip_prefix('*'))
        .unwrap_or(label);
    is_dns1123_label(rest)
}

/// Why Istio's `ValidateWildcardDomain` rejects a domain name (DN1-DN5), or `None`. A
/// wildcard is allowed in the first label only; one trailing dot is allowed.
pub fn domain_problem(domain: &str) -> Option<String> {
    if domain.is_empty() {
        return Some("the domain name is empty".to_owned());
    }
    if domain.len() > 255 {
        return Some(format!(
            "domain name is {} characters long, over the limit of 255",
            domain.len()
        ));
    }
    let (first, rest) = match domain.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (domain, None),
    };
    if !is_wildcard_label(first) {
        return Some(format!("label `{first}` is not a valid DNS label"));
    }
    let rest = rest?;
    let labels: Vec<&str> = rest.split('.').collect();
    let top = labels[labels.len() - 1];
    if !top.is_empty() && top.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!("top-level domain `{top}` is all-numeric"));
    }
    for (i, label) in labels.iter().enumerate() {
        // Istio: the last label may be empty, for names such as `istio.io.`.
        if i == labels.len() - 1 && label.is_empty() {
            break;
        }
        if !is_dns1123_label(label) {
            return Some(format!("label `{label}` is not a valid DNS label"));
        }
    }
    None
}

/// Why Istio's `ValidateFQDN` rejects a name (DN1, DN2, DN4, DN5): like `domain_problem`,
/// but no label may be a wildcard.
pub fn fqdn_problem(name: &str) -> Option<String> {
    let first = name.split('.').next().unwrap_or(name);
    if !name.is_empty() && name.len() <= 255 && !is_dns1123_label(first) {
        return Some(format!("label `{first}` is not a valid DNS label"));
    }
    domain_problem(name)
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

    #[test]
    fn domains() {
        for ok in [
            "reviews",
            "*",
            "*.foo.com",
            "*-foo.com",
            "*foo",
            "Foo.COM",
            "istio.io.",
        ] {
            assert_eq!(domain_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "foo_bar",
            "a.-b",
            "a.b.123",
            "a..b",
            "foo.*.com",
            "10.0.0.1",
        ] {
            assert!(domain_problem(bad).is_some(), "{bad}");
        }
        assert!(domain_problem(&"a".repeat(64)).is_some());
        assert!(domain_problem(&format!("{}.com", "a.".repeat(127))).is_some());
    }
}
