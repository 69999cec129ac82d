//! Shared helpers for the end-to-end tests.

use std::net::SocketAddr;
use std::path::Path;

/// A STATIC ServiceEntry for `name.default.svc.cluster.local` on port 9080 (named `http`),
/// one loopback endpoint per `(version, address)`, labelled `app: name` and `version`,
/// followed by a document separator.
pub fn service_entry(name: &str, endpoints: &[(&str, SocketAddr)]) -> String {
    let mut yaml = format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: {name}\nspec:\n  hosts:\n  - {name}.default.svc.cluster.local\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports:\n  - number: 9080\n    name: http\n    protocol: HTTP\n  endpoints:\n"
    );
    for (version, addr) in endpoints {
        yaml.push_str(&format!(
            "  - address: 127.0.0.1\n    ports:\n      http: {}\n    labels:\n      app: {name}\n      version: {version}\n",
            addr.port()
        ));
    }
    yaml.push_str("---\n");
    yaml
}

/// Publishes a file the way a deployment should: write a temp file, then rename over.
pub fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).expect("write temp table");
    std::fs::rename(&tmp, path).expect("rename table");
}
