//! `fake-apiserver --kubeconfig FILE [--namespace NS]...`: runs the fake API server on a
//! loopback port, writes a kubeconfig for it, and serves until interrupted, so that
//! `meshc deploy` can be tried without a cluster.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut kubeconfig = None;
    let mut namespaces = vec!["default".to_owned()];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--kubeconfig", Some(path)) => kubeconfig = Some(path),
            ("--namespace", Some(ns)) => namespaces.push(ns),
            _ => {
                eprintln!("usage: fake-apiserver --kubeconfig FILE [--namespace NS]...");
                return ExitCode::from(2);
            }
        }
    }
    let Some(kubeconfig) = kubeconfig else {
        eprintln!("usage: fake-apiserver --kubeconfig FILE [--namespace NS]...");
        return ExitCode::from(2);
    };
    let names: Vec<&str> = namespaces.iter().map(String::as_str).collect();
    let server = match fake_apiserver::FakeApiServer::with_namespaces(&names) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-apiserver: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = std::fs::write(&kubeconfig, server.kubeconfig()) {
        eprintln!("fake-apiserver: {kubeconfig}: {e}");
        return ExitCode::from(1);
    }
    eprintln!(
        "fake-apiserver: serving {} (namespaces: {}); kubeconfig written to {kubeconfig}; stop with Ctrl-C",
        server.url(),
        names.join(", ")
    );
    loop {
        std::thread::park();
    }
}
