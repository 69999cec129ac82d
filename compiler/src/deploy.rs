//! `meshc deploy`: check, build, and server-side apply the routing table to a Kubernetes
//! ConfigMap that mesh-proxy sidecars mount; keep content-addressed immutable revisions for
//! `--rollback` and `--history`.
//!
//! The only part of meshc that does network I/O. [`manifest`] builds the ConfigMaps without
//! a cluster (and is all `--dry-run` uses); [`cluster`] talks to the API server. The tokio
//! runtime is created here, for this command only.

pub mod cluster;
pub mod manifest;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

pub use cluster::{Connection, DeployError, Target};
pub use manifest::{Artifact, Provenance};

/// The flags of `meshc deploy` besides the policy inputs.
#[derive(clap::Args, Clone, Debug)]
pub struct DeployFlags {
    /// The ConfigMap the proxies mount (revisions are `NAME-rev-<hash>`).
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// The kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,
    /// The kubeconfig file (default: `KUBECONFIG`, then `~/.kube/config`, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Print the ConfigMaps as YAML and contact no cluster.
    #[arg(long, conflicts_with_all = ["rollback", "history"])]
    pub dry_run: bool,
    /// How many revisions to keep, the current one included; older ones are deleted.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub keep: u32,
    /// Put a kept revision back: `previous` (the default), a revision name, or a prefix of its
    /// hash. Builds nothing.
    #[arg(long, value_name = "REV", num_args = 0..=1, default_missing_value = "previous",
          conflicts_with = "history")]
    pub rollback: Option<String>,
    /// List the kept revisions (newest first) and which one is current.
    #[arg(long)]
    pub history: bool,
}

impl DeployFlags {
    fn connection(&self) -> Connection {
        Connection {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
    }
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("meshc: error: {message}");
    ExitCode::from(code)
}

fn exit_for(error: &DeployError) -> ExitCode {
    match error {
        DeployError::Config(m) => fail(2, m),
        DeployError::Api(m) | DeployError::Refused(m) => fail(1, m),
    }
}

/// The target, validated: both names as Kubernetes accepts them.
pub fn target(namespace: Option<&str>, flags: &DeployFlags) -> Result<Target, String> {
    let namespace = namespace.ok_or(
        "meshc deploy needs --namespace: the namespace of the ConfigMap (and of policy resources that name none)",
    )?;
    manifest::check_namespace(namespace)?;
    manifest::check_name(&flags.name)?;
    Ok(Target {
        namespace: namespace.to_owned(),
        name: flags.name.clone(),
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(2, format!("cannot start the I/O runtime: {e}")))
}

/// `meshc deploy` after a successful check and build: `bytes` is the artifact.
pub fn run_deploy(
    bytes: Vec<u8>,
    paths: &[PathBuf],
    namespace: Option<&str>,
    flags: &DeployFlags,
) -> ExitCode {
    let target = match target(namespace, flags) {
        Ok(t) => t,
        Err(e) => return fail(2, e),
    };
    let artifact = match Artifact::from_bytes(bytes) {
        Ok(a) => a,
        Err(e) => {
            return fail(
                2,
                format!("internal error: the built table does not load: {e}"),
            );
        }
    };
    if let Err(too_large) = manifest::check_size(&artifact) {
        return fail(1, too_large);
    }
    let provenance = Provenance::collect(paths);
    let annotations = manifest::artifact_annotations(&artifact, &provenance);
    let revision = artifact.revision_name(&target.name);
    if flags.dry_run {
        return dry_run(&target, &artifact, &revision, annotations);
    }
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let keep = usize::try_from(flags.keep).unwrap_or(usize::MAX);
    let outcome = runtime.block_on(async {
        let client = cluster::client(&flags.connection()).await?;
        cluster::deploy(&client, &target, &artifact, &annotations, keep).await
    });
    match outcome {
        Ok(cluster::Deployed::Unchanged { revision, sequence }) => {
            crate::outln!(
                "{}/{} already holds this table ({revision}, deploy #{sequence}): unchanged",
                target.namespace,
                target.name
            );
            ExitCode::SUCCESS
        }
        Ok(cluster::Deployed::Applied {
            revision,
            sequence,
            deleted,
        }) => {
            crate::outln!(
                "deployed {}/{} = {revision} (deploy #{sequence}): {} bytes, format v{}, content sha256:{}, {} virtual hosts, {} routes, {} clusters{}",
                target.namespace,
                target.name,
                artifact.bytes.len(),
                artifact.format_version,
                artifact.content_hash_hex,
                artifact.virtual_hosts,
                artifact.routes,
                artifact.clusters,
                provenance
                    .git_commit
                    .as_ref()
                    .map(|c| format!(", commit {c}"))
                    .unwrap_or_default()
            );
            for name in deleted {
                crate::outln!(
                    "deleted {}/{name} (more than {} revisions kept)",
                    target.namespace,
                    flags.keep
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => exit_for(&e),
    }
}

fn dry_run(
    target: &Target,
    artifact: &Artifact,
    revision: &str,
    mut annotations: BTreeMap<String, String>,
) -> ExitCode {
    annotations.insert(manifest::REVISION.to_owned(), revision.to_owned());
    let copy = manifest::config_map(
        &target.namespace,
        revision,
        &target.name,
        manifest::ROLE_REVISION,
        &artifact.bytes,
        annotations.clone(),
    );
    let mounted = manifest::config_map(
        &target.namespace,
        &target.name,
        &target.name,
        manifest::ROLE_CURRENT,
        &artifact.bytes,
        annotations,
    );
    crate::out!("{}", manifest::to_yaml(&[copy, mounted]));
    eprintln!(
        "meshc: dry run: nothing was sent; a deploy would apply {}/{revision} (immutable) and {}/{} ({} bytes of data of the {} allowed; the sequence and deployed-at annotations are set by the cluster-side step)",
        target.namespace,
        target.namespace,
        target.name,
        artifact.data_size(),
        manifest::MAX_DATA_BYTES
    );
    ExitCode::SUCCESS
}

/// `meshc deploy --rollback [REV]`.
pub fn run_rollback(namespace: Option<&str>, flags: &DeployFlags, wanted: &str) -> ExitCode {
    let target = match target(namespace, flags) {
        Ok(t) => t,
        Err(e) => return fail(2, e),
    };
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let outcome = runtime.block_on(async {
        let client = cluster::client(&flags.connection()).await?;
        cluster::rollback(&client, &target, wanted).await
    });
    match outcome {
        Ok(done) => {
            crate::outln!(
                "rolled back {}/{} from {} to {} (deploy #{})",
                target.namespace,
                target.name,
                if done.from.is_empty() {
                    "an unknown revision"
                } else {
                    &done.from
                },
                done.to,
                done.sequence
            );
            ExitCode::SUCCESS
        }
        Err(e) => exit_for(&e),
    }
}

/// `meshc deploy --history`.
pub fn run_history(namespace: Option<&str>, flags: &DeployFlags) -> ExitCode {
    let target = match target(namespace, flags) {
        Ok(t) => t,
        Err(e) => return fail(2, e),
    };
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let outcome = runtime.block_on(async {
        let client = cluster::client(&flags.connection()).await?;
        cluster::history(&client, &target).await
    });
    match outcome {
        Ok((revisions, current)) => {
            crate::out!("{}", history_table(&revisions, current.as_deref()));
            ExitCode::SUCCESS
        }
        Err(e) => exit_for(&e),
    }
}

/// One line per revision, newest first; `*` marks the one the mounted ConfigMap holds.
pub fn history_table(revisions: &[cluster::Revision], current: Option<&str>) -> String {
    let mut rows = vec![[
        String::new(),
        "DEPLOY".to_owned(),
        "REVISION".to_owned(),
        "CONTENT HASH".to_owned(),
        "GIT COMMIT".to_owned(),
        "BUILT AT".to_owned(),
        "DEPLOYED AT".to_owned(),
    ]];
    for r in revisions {
        let short = |key: &str, n: usize| -> String {
            r.annotation(key)
                .map(|v| v.trim_start_matches("sha256:"))
                .map(|v| v.chars().take(n).collect())
                .unwrap_or_else(|| "-".to_owned())
        };
        let commit = r
            .annotation(manifest::GIT_COMMIT)
            .map_or("-".to_owned(), |c| {
                let dirty = if c.ends_with("-dirty") { "-dirty" } else { "" };
                format!("{}{dirty}", c.chars().take(12).collect::<String>())
            });
        rows.push([
            if current == Some(r.name.as_str()) {
                "*"
            } else {
                ""
            }
            .to_owned(),
            format!("#{}", r.sequence),
            r.name.clone(),
            short(manifest::CONTENT_HASH, 12),
            commit,
            r.annotation(manifest::BUILT_AT).unwrap_or("-").to_owned(),
            r.annotation(manifest::DEPLOYED_AT)
                .unwrap_or("-")
                .to_owned(),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    if revisions.is_empty() {
        out.push_str("(no revisions kept)\n");
    }
    out
}
