//! The cluster side of `meshc deploy`: connect with a kubeconfig (or in-cluster), then
//! deploy, roll back, list revisions and collect old ones, all through server-side apply
//! with field manager `meshc`.
//!
//! The mounted ConfigMap `NAME` holds the current table; every deploy also writes an
//! immutable, content-addressed copy `NAME-rev-<hash10>`. Rolling back re-applies a kept
//! copy to `NAME`, so proxies always read one ConfigMap whose content changes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::manifest::{self, Artifact};

pub const FIELD_MANAGER: &str = "meshc";

/// Which ConfigMap, where.
#[derive(Clone, Debug)]
pub struct Target {
    pub namespace: String,
    pub name: String,
}

/// How to reach the cluster, as kubectl takes it.
#[derive(Clone, Debug, Default)]
pub struct Connection {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

/// Why a cluster operation did not happen.
#[derive(Debug)]
pub enum DeployError {
    /// The kubeconfig could not be read or has no such context (a usage error).
    Config(String),
    /// The API server refused a request or could not be reached.
    Api(String),
    /// meshc refused: the state of the cluster makes the operation unsafe or meaningless.
    Refused(String),
}

impl std::fmt::Display for DeployError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeployError::Config(m) | DeployError::Api(m) | DeployError::Refused(m) => {
                f.write_str(m)
            }
        }
    }
}

/// The message of an error and of each error that caused it.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

fn api_error(what: &str, error: kube::Error) -> DeployError {
    match error {
        kube::Error::Api(status) => DeployError::Api(format!(
            "{what}: the API server answered {} {}: {}",
            status.code, status.reason, status.message
        )),
        kube::Error::SerdeError(e) => DeployError::Api(format!(
            "{what}: the server's answer is not a Kubernetes API response (is the kubeconfig's server address right?): {e}"
        )),
        other => DeployError::Api(format!(
            "{what}: cannot reach the API server: {}",
            chain(&other)
        )),
    }
}

/// A client for the kubeconfig file and context given, else `KUBECONFIG` or
/// `~/.kube/config`, else the pod's service account (in-cluster).
pub async fn client(connection: &Connection) -> Result<Client, DeployError> {
    let options = KubeConfigOptions {
        context: connection.context.clone(),
        cluster: None,
        user: None,
    };
    let mut config = match (&connection.kubeconfig, &connection.context) {
        (Some(path), _) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| DeployError::Config(format!("{}: {}", path.display(), chain(&e))))?;
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| DeployError::Config(format!("{}: {}", path.display(), chain(&e))))?
        }
        (None, Some(_)) => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| DeployError::Config(chain(&e)))?,
        (None, None) => Config::infer()
            .await
            .map_err(|e| DeployError::Config(chain(&e)))?,
    };
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(30));
    config.write_timeout = Some(Duration::from_secs(30));
    Client::try_from(config).map_err(|e| DeployError::Config(chain(&e)))
}

/// A kept revision, as read from the cluster.
#[derive(Clone, Debug)]
pub struct Revision {
    pub name: String,
    pub sequence: u64,
    pub annotations: BTreeMap<String, String>,
    pub bytes: Option<Vec<u8>>,
}

impl Revision {
    fn from_config_map(cm: ConfigMap) -> Revision {
        let annotations = cm.metadata.annotations.unwrap_or_default();
        Revision {
            name: cm.metadata.name.unwrap_or_default(),
            sequence: sequence_of(&annotations),
            bytes: cm
                .binary_data
                .and_then(|mut d| d.remove(manifest::TABLE_KEY))
                .map(|b| b.0),
            annotations,
        }
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

fn sequence_of(annotations: &BTreeMap<String, String>) -> u64 {
    annotations
        .get(manifest::SEQUENCE)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The mounted ConfigMap, if it exists; refuses one that meshc does not manage.
async fn current(api: &Api<ConfigMap>, target: &Target) -> Result<Option<ConfigMap>, DeployError> {
    let what = format!("reading ConfigMap {}/{}", target.namespace, target.name);
    let Some(cm) = api
        .get_opt(&target.name)
        .await
        .map_err(|e| api_error(&what, e))?
    else {
        return Ok(None);
    };
    let labels = cm.metadata.labels.clone().unwrap_or_default();
    let ours = labels.get(manifest::MANAGED_BY).map(String::as_str) == Some("meshc")
        && labels.get(manifest::TABLE) == Some(&target.name)
        && labels.get(manifest::ROLE).map(String::as_str) == Some(manifest::ROLE_CURRENT);
    if !ours {
        return Err(DeployError::Refused(format!(
            "ConfigMap {}/{} exists and is not a table deployed by meshc (it lacks the labels {}=meshc, {}={}, {}={}); choose another --name, or delete it if it is left over",
            target.namespace,
            target.name,
            manifest::MANAGED_BY,
            manifest::TABLE,
            target.name,
            manifest::ROLE,
            manifest::ROLE_CURRENT
        )));
    }
    Ok(Some(cm))
}

fn table_bytes(cm: &ConfigMap) -> Option<&[u8]> {
    cm.binary_data
        .as_ref()
        .and_then(|d| d.get(manifest::TABLE_KEY))
        .map(|b| b.0.as_slice())
}

/// Every kept revision of the target, newest (highest sequence) first.
pub async fn revisions(client: &Client, target: &Target) -> Result<Vec<Revision>, DeployError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &target.namespace);
    let selector = format!(
        "{}=meshc,{}={},{}={}",
        manifest::MANAGED_BY,
        manifest::TABLE,
        target.name,
        manifest::ROLE,
        manifest::ROLE_REVISION
    );
    let what = format!(
        "listing the revisions of {}/{}",
        target.namespace, target.name
    );
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| api_error(&what, e))?;
    let mut revisions: Vec<Revision> = list
        .items
        .into_iter()
        .map(Revision::from_config_map)
        .collect();
    revisions.sort_by(|a, b| {
        b.sequence
            .cmp(&a.sequence)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(revisions)
}

async fn apply(api: &Api<ConfigMap>, cm: &ConfigMap, what: &str) -> Result<(), DeployError> {
    let name = cm.metadata.name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(cm),
    )
    .await
    .map(|_| ())
    .map_err(|e| api_error(what, e))
}

/// What a deploy did.
#[derive(Debug)]
pub enum Deployed {
    /// The mounted ConfigMap already holds these bytes: nothing was written.
    Unchanged { revision: String, sequence: u64 },
    Applied {
        revision: String,
        sequence: u64,
        /// Revisions deleted because more than `keep` were kept.
        deleted: Vec<String>,
    },
}

/// Writes the immutable revision, points the mounted ConfigMap at it, then keeps the newest
/// `keep` revisions (the current one always among them).
pub async fn deploy(
    client: &Client,
    target: &Target,
    artifact: &Artifact,
    annotations: &BTreeMap<String, String>,
    keep: usize,
) -> Result<Deployed, DeployError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &target.namespace);
    let revision = artifact.revision_name(&target.name);
    let existing = current(&api, target).await?;
    let previous_sequence = existing.as_ref().map_or(0, |cm| {
        sequence_of(&cm.metadata.annotations.clone().unwrap_or_default())
    });
    if let Some(cm) = &existing
        && table_bytes(cm) == Some(artifact.bytes.as_slice())
    {
        return Ok(Deployed::Unchanged {
            revision: cm
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(manifest::REVISION).cloned())
                .unwrap_or(revision),
            sequence: previous_sequence,
        });
    }
    let sequence = previous_sequence + 1;
    let mut annotations = annotations.clone();
    annotations.insert(manifest::REVISION.to_owned(), revision.clone());
    annotations.insert(manifest::SEQUENCE.to_owned(), sequence.to_string());
    annotations.insert(manifest::DEPLOYED_AT.to_owned(), manifest::now());
    // The copy first: if pointing the mounted ConfigMap at it fails, nothing serves from it
    // and the next deploy or collection tidies it.
    let copy = manifest::config_map(
        &target.namespace,
        &revision,
        &target.name,
        manifest::ROLE_REVISION,
        &artifact.bytes,
        annotations.clone(),
    );
    apply(
        &api,
        &copy,
        &format!("writing revision {}/{revision}", target.namespace),
    )
    .await?;
    let mut mounted = manifest::config_map(
        &target.namespace,
        &target.name,
        &target.name,
        manifest::ROLE_CURRENT,
        &artifact.bytes,
        annotations,
    );
    // Optimistic concurrency: if another deploy changed the ConfigMap since we read it, the
    // apply fails with a conflict instead of both claiming the same sequence number.
    mounted.metadata.resource_version = existing.and_then(|cm| cm.metadata.resource_version);
    apply(
        &api,
        &mounted,
        &format!("updating ConfigMap {}/{}", target.namespace, target.name),
    )
    .await?;
    let deleted = collect(client, target, &revision, keep).await?;
    Ok(Deployed::Applied {
        revision,
        sequence,
        deleted,
    })
}

/// Deletes the revisions past the newest `keep`, never the current one.
pub async fn collect(
    client: &Client,
    target: &Target,
    current_revision: &str,
    keep: usize,
) -> Result<Vec<String>, DeployError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &target.namespace);
    let mut deleted = Vec::new();
    let mut kept = 0;
    for revision in revisions(client, target).await? {
        if revision.name == current_revision || kept < keep.saturating_sub(1) {
            if revision.name != current_revision {
                kept += 1;
            }
            continue;
        }
        let what = format!(
            "deleting old revision {}/{}",
            target.namespace, revision.name
        );
        match api.delete(&revision.name, &DeleteParams::default()).await {
            Ok(_) => deleted.push(revision.name),
            // Someone else deleted it first: the outcome is the one we wanted.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(api_error(&what, e)),
        }
    }
    Ok(deleted)
}

/// What a rollback did.
#[derive(Debug)]
pub struct RolledBack {
    pub from: String,
    pub to: String,
    pub sequence: u64,
}

/// Puts a kept revision back into the mounted ConfigMap: `previous` (the newest revision
/// other than the current one), a revision name, or a prefix of its hash.
pub async fn rollback(
    client: &Client,
    target: &Target,
    wanted: &str,
) -> Result<RolledBack, DeployError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &target.namespace);
    let Some(mounted) = current(&api, target).await? else {
        return Err(DeployError::Refused(format!(
            "nothing to roll back: ConfigMap {}/{} does not exist (deploy first)",
            target.namespace, target.name
        )));
    };
    let mounted_annotations = mounted.metadata.annotations.clone().unwrap_or_default();
    let from = mounted_annotations
        .get(manifest::REVISION)
        .cloned()
        .unwrap_or_default();
    let revisions = revisions(client, target).await?;
    let chosen = choose(&revisions, &from, wanted, target)?;
    let bytes = chosen.bytes.clone().ok_or_else(|| {
        DeployError::Refused(format!(
            "revision {} holds no `{}`: refusing to roll back to it",
            chosen.name,
            manifest::TABLE_KEY
        ))
    })?;
    // Trust nothing read back: the bytes must hash to the revision's name and load.
    let artifact = Artifact::from_bytes(bytes).map_err(|e| {
        DeployError::Refused(format!(
            "revision {} does not hold a valid routing table ({e}): refusing to roll back to it",
            chosen.name
        ))
    })?;
    if artifact.revision_name(&target.name) != chosen.name
        || chosen.annotation(manifest::ARTIFACT_SHA256) != Some(artifact.sha256_hex.as_str())
    {
        return Err(DeployError::Refused(format!(
            "revision {}'s bytes do not match its name and {} annotation (sha256 {}): refusing to roll back to it",
            chosen.name,
            manifest::ARTIFACT_SHA256,
            artifact.sha256_hex
        )));
    }
    if table_bytes(&mounted) == Some(artifact.bytes.as_slice()) {
        return Err(DeployError::Refused(format!(
            "{}/{} already holds revision {}",
            target.namespace, target.name, chosen.name
        )));
    }
    let sequence = sequence_of(&mounted_annotations).max(chosen.sequence) + 1;
    let mut annotations: BTreeMap<String, String> = chosen
        .annotations
        .iter()
        .filter(|(k, _)| {
            [
                manifest::CONTENT_HASH,
                manifest::ARTIFACT_SHA256,
                manifest::FORMAT_VERSION,
                manifest::GIT_COMMIT,
                manifest::BUILT_AT,
            ]
            .contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    annotations.insert(manifest::REVISION.to_owned(), chosen.name.clone());
    annotations.insert(manifest::SEQUENCE.to_owned(), sequence.to_string());
    annotations.insert(manifest::DEPLOYED_AT.to_owned(), manifest::now());
    // The revision's metadata moves forward too (its data is immutable; its annotations are
    // not), so that `previous` after a rollback is the revision rolled back from.
    let copy = manifest::config_map(
        &target.namespace,
        &chosen.name,
        &target.name,
        manifest::ROLE_REVISION,
        &artifact.bytes,
        annotations.clone(),
    );
    apply(
        &api,
        &copy,
        &format!("updating revision {}/{}", target.namespace, chosen.name),
    )
    .await?;
    annotations.insert(manifest::ROLLED_BACK_FROM.to_owned(), from.clone());
    let mut restored = manifest::config_map(
        &target.namespace,
        &target.name,
        &target.name,
        manifest::ROLE_CURRENT,
        &artifact.bytes,
        annotations,
    );
    restored.metadata.resource_version = mounted.metadata.resource_version;
    apply(
        &api,
        &restored,
        &format!("updating ConfigMap {}/{}", target.namespace, target.name),
    )
    .await?;
    Ok(RolledBack {
        from,
        to: chosen.name.clone(),
        sequence,
    })
}

fn choose<'a>(
    revisions: &'a [Revision],
    current: &str,
    wanted: &str,
    target: &Target,
) -> Result<&'a Revision, DeployError> {
    if wanted == "previous" {
        return revisions.iter().find(|r| r.name != current).ok_or_else(|| {
            DeployError::Refused(format!(
                "no earlier revision of {}/{} is kept (see `meshc deploy --history`)",
                target.namespace, target.name
            ))
        });
    }
    if let Some(exact) = revisions.iter().find(|r| r.name == wanted) {
        return Ok(exact);
    }
    let prefix = format!("{}-rev-", target.name);
    let hash = wanted.strip_prefix(&prefix).unwrap_or(wanted);
    let matches: Vec<&Revision> = if hash.len() >= 4 && hash.bytes().all(|b| b.is_ascii_hexdigit())
    {
        revisions
            .iter()
            .filter(|r| {
                r.name
                    .strip_prefix(&prefix)
                    .is_some_and(|h| h.starts_with(&hash.to_ascii_lowercase()))
                    || r.annotation(manifest::ARTIFACT_SHA256)
                        .is_some_and(|h| h.starts_with(&hash.to_ascii_lowercase()))
            })
            .collect()
    } else {
        Vec::new()
    };
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(DeployError::Refused(format!(
            "no kept revision of {}/{} is `{wanted}`: give `previous`, a revision name or at least 4 hex digits of its hash (see `meshc deploy --history`)",
            target.namespace, target.name
        ))),
        many => Err(DeployError::Refused(format!(
            "`{wanted}` matches {} revisions ({}): give more hex digits",
            many.len(),
            many.iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The kept revisions, newest first, and the name of the current one.
pub async fn history(
    client: &Client,
    target: &Target,
) -> Result<(Vec<Revision>, Option<String>), DeployError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &target.namespace);
    let mounted = current(&api, target).await?;
    let current_revision = mounted
        .and_then(|cm| cm.metadata.annotations)
        .and_then(|a| a.get(manifest::REVISION).cloned());
    Ok((revisions(client, target).await?, current_revision))
}
