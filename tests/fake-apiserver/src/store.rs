//! The object store: ConfigMaps by namespace and name, a resourceVersion counter, field
//! ownership for server-side apply, and the validation the real API server does on
//! ConfigMaps (names, keys, the 1 MiB size limit, `immutable`).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

/// The real API server's limit on a ConfigMap's data (`MaxSecretSize`, 1 MiB): the sum of
/// every key's length and every value's length, `binaryData` counted decoded.
pub const MAX_CONFIG_MAP_BYTES: usize = 1024 * 1024;

/// A failure the way the API server reports it: a `Status` object and its HTTP code.
#[derive(Debug)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        })
    }

    pub fn not_found(kind: &str, name: &str) -> ApiError {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("{kind} \"{name}\" not found"),
            details: json!({"name": name, "kind": kind}),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: json!({}),
        }
    }

    fn invalid(name: &str, causes: Vec<String>) -> ApiError {
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("ConfigMap \"{name}\" is invalid: [{}]", causes.join(", ")),
            details: json!({"name": name, "kind": "ConfigMap",
                "causes": causes.iter().map(|c| json!({"message": c})).collect::<Vec<_>>()}),
        }
    }

    fn conflict(name: &str, message: String) -> ApiError {
        ApiError {
            code: 409,
            reason: "Conflict",
            message,
            details: json!({"name": name, "kind": "configmaps"}),
        }
    }
}

/// One field of a ConfigMap that a manager can own.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Label(String),
    Annotation(String),
    Data(String),
    BinaryData(String),
    Immutable,
}

impl Field {
    /// The field's path as the API server writes it in apply conflicts.
    fn path(&self) -> String {
        match self {
            Field::Label(k) => format!(".metadata.labels.{k}"),
            Field::Annotation(k) => format!(".metadata.annotations.{k}"),
            Field::Data(k) => format!(".data.{k}"),
            Field::BinaryData(k) => format!(".binaryData.{k}"),
            Field::Immutable => ".immutable".to_owned(),
        }
    }
}

/// The user-settable content of a ConfigMap, one value per field (`binaryData` decoded).
type Fields = BTreeMap<Field, FieldValue>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldValue {
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
}

/// A stored ConfigMap.
#[derive(Clone, Debug)]
pub struct Stored {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub resource_version: u64,
    pub fields: Fields,
    /// Which field managers own each field (server-side apply).
    pub owners: BTreeMap<Field, BTreeSet<String>>,
}

impl Stored {
    /// The object as the API server returns it.
    pub fn to_json(&self, with_type: bool) -> Value {
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(self.name));
        metadata.insert("namespace".into(), json!(self.namespace));
        metadata.insert("uid".into(), json!(self.uid));
        metadata.insert(
            "resourceVersion".into(),
            json!(self.resource_version.to_string()),
        );
        metadata.insert("creationTimestamp".into(), json!("2026-01-01T00:00:00Z"));
        let mut labels = Map::new();
        let mut annotations = Map::new();
        let mut data = Map::new();
        let mut binary = Map::new();
        let mut immutable = None;
        for (field, value) in &self.fields {
            let value_json = match value {
                FieldValue::Text(s) => json!(s),
                FieldValue::Bytes(b) => json!(BASE64.encode(b)),
                FieldValue::Bool(b) => json!(b),
            };
            match field {
                Field::Label(k) => labels.insert(k.clone(), value_json),
                Field::Annotation(k) => annotations.insert(k.clone(), value_json),
                Field::Data(k) => data.insert(k.clone(), value_json),
                Field::BinaryData(k) => binary.insert(k.clone(), value_json),
                Field::Immutable => {
                    immutable = Some(value_json);
                    None
                }
            };
        }
        if !labels.is_empty() {
            metadata.insert("labels".into(), Value::Object(labels));
        }
        if !annotations.is_empty() {
            metadata.insert("annotations".into(), Value::Object(annotations));
        }
        let mut object = Map::new();
        if with_type {
            object.insert("kind".into(), json!("ConfigMap"));
            object.insert("apiVersion".into(), json!("v1"));
        }
        object.insert("metadata".into(), Value::Object(metadata));
        if !data.is_empty() {
            object.insert("data".into(), Value::Object(data));
        }
        if !binary.is_empty() {
            object.insert("binaryData".into(), Value::Object(binary));
        }
        if let Some(immutable) = immutable {
            object.insert("immutable".into(), immutable);
        }
        Value::Object(object)
    }

    pub fn bytes(&self, key: &str) -> Option<&[u8]> {
        match self.fields.get(&Field::BinaryData(key.to_owned())) {
            Some(FieldValue::Bytes(b)) => Some(b),
            _ => None,
        }
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        match self.fields.get(&Field::Annotation(key.to_owned())) {
            Some(FieldValue::Text(s)) => Some(s),
            _ => None,
        }
    }

    fn is_immutable(&self) -> bool {
        self.fields.get(&Field::Immutable) == Some(&FieldValue::Bool(true))
    }
}

/// What a request body says about a ConfigMap: its metadata and its fields.
pub struct Incoming {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub resource_version: Option<String>,
    pub fields: Fields,
}

/// Reads a ConfigMap body. `require_type`: apply requests must carry apiVersion and kind.
pub fn parse_config_map(body: &Value, require_type: bool) -> Result<Incoming, ApiError> {
    let object = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request("the body is not a JSON object"))?;
    let api_version = object.get("apiVersion").and_then(Value::as_str);
    let kind = object.get("kind").and_then(Value::as_str);
    if require_type && (api_version.is_none() || kind.is_none()) {
        return Err(ApiError::bad_request(
            "apiVersion and kind must be set in an apply request",
        ));
    }
    if api_version.is_some_and(|v| v != "v1") || kind.is_some_and(|k| k != "ConfigMap") {
        return Err(ApiError::bad_request(format!(
            "the body is a {}/{}, not a v1/ConfigMap",
            api_version.unwrap_or(""),
            kind.unwrap_or("")
        )));
    }
    let metadata = object.get("metadata").and_then(Value::as_object);
    let meta_str = |key: &str| {
        metadata
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mut fields = Fields::new();
    let string_map = |value: Option<&Value>,
                      what: &str|
     -> Result<Vec<(String, String)>, ApiError> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(Vec::new());
        };
        let map = value
            .as_object()
            .ok_or_else(|| ApiError::bad_request(format!("{what} must be an object")))?;
        map.iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|s| (k.clone(), s.to_owned()))
                    .ok_or_else(|| ApiError::bad_request(format!("{what}.{k} must be a string")))
            })
            .collect()
    };
    for (k, v) in string_map(metadata.and_then(|m| m.get("labels")), "metadata.labels")? {
        fields.insert(Field::Label(k), FieldValue::Text(v));
    }
    for (k, v) in string_map(
        metadata.and_then(|m| m.get("annotations")),
        "metadata.annotations",
    )? {
        fields.insert(Field::Annotation(k), FieldValue::Text(v));
    }
    for (k, v) in string_map(object.get("data"), "data")? {
        fields.insert(Field::Data(k), FieldValue::Text(v));
    }
    for (k, v) in string_map(object.get("binaryData"), "binaryData")? {
        let bytes = BASE64.decode(v.as_bytes()).map_err(|e| {
            ApiError::bad_request(format!("binaryData.{k}: illegal base64 data: {e}"))
        })?;
        fields.insert(Field::BinaryData(k), FieldValue::Bytes(bytes));
    }
    match object.get("immutable") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => {
            fields.insert(Field::Immutable, FieldValue::Bool(*b));
        }
        Some(_) => return Err(ApiError::bad_request("immutable must be a boolean")),
    }
    Ok(Incoming {
        name: meta_str("name"),
        namespace: meta_str("namespace"),
        resource_version: meta_str("resourceVersion"),
        fields,
    })
}

/// RFC 1123 subdomain: lower-case alphanumerics, `-` and `.`, alphanumeric at both ends.
fn is_dns_subdomain(name: &str) -> bool {
    let bytes = name.as_bytes();
    !name.is_empty()
        && name.len() <= 253
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    value.is_empty()
        || (value.len() <= 63
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
            && bytes.last().is_some_and(u8::is_ascii_alphanumeric))
}

fn is_config_map_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The checks of the real `ValidateConfigMap` that matter here.
fn validate(name: &str, fields: &Fields) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    if !is_dns_subdomain(name) {
        causes.push(format!(
            "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        ));
    }
    let mut total = 0usize;
    for (field, value) in fields {
        match (field, value) {
            (Field::Label(k), FieldValue::Text(v)) if !is_label_value(v) => causes.push(format!(
                "metadata.labels: Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, at most 63 characters (label `{k}`)"
            )),
            (Field::Data(k), FieldValue::Text(v)) => {
                if !is_config_map_key(k) {
                    causes.push(format!("data[{k}]: Invalid value: \"{k}\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'"));
                }
                if fields.contains_key(&Field::BinaryData(k.clone())) {
                    causes.push(format!(
                        "data[{k}]: Invalid value: \"{k}\": duplicate of key present in binaryData"
                    ));
                }
                total += k.len() + v.len();
            }
            (Field::BinaryData(k), FieldValue::Bytes(v)) => {
                if !is_config_map_key(k) {
                    causes.push(format!("binaryData[{k}]: Invalid value: \"{k}\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'"));
                }
                total += k.len() + v.len();
            }
            _ => {}
        }
    }
    if total > MAX_CONFIG_MAP_BYTES {
        causes.push(format!(
            "[]: Too long: may not be more than {MAX_CONFIG_MAP_BYTES} bytes"
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(name, causes))
    }
}

/// The real `ValidateConfigMapUpdate`: once `immutable` is true, it stays true and neither
/// `data` nor `binaryData` may change. Metadata may.
fn validate_update(old: &Stored, new: &Fields) -> Result<(), ApiError> {
    if !old.is_immutable() {
        return Ok(());
    }
    let content = |fields: &Fields| -> Vec<(Field, FieldValue)> {
        fields
            .iter()
            .filter(|(f, _)| matches!(f, Field::Data(_) | Field::BinaryData(_)))
            .map(|(f, v)| (f.clone(), v.clone()))
            .collect()
    };
    let mut causes = Vec::new();
    if new.get(&Field::Immutable) != Some(&FieldValue::Bool(true)) {
        causes.push("immutable: Forbidden: field is immutable when `immutable` is set".to_owned());
    }
    if content(&old.fields) != content(new) {
        causes.push("data: Forbidden: field is immutable when `immutable` is set".to_owned());
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&old.name, causes))
    }
}

/// Every ConfigMap, by (namespace, name).
pub struct Store {
    pub namespaces: BTreeSet<String>,
    pub objects: BTreeMap<(String, String), Stored>,
    resource_version: u64,
    next_uid: u64,
}

impl Store {
    pub fn new(namespaces: &[&str]) -> Store {
        Store {
            namespaces: namespaces.iter().map(|n| (*n).to_owned()).collect(),
            objects: BTreeMap::new(),
            resource_version: 100,
            next_uid: 1,
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    fn bump(&mut self) -> u64 {
        self.resource_version += 1;
        self.resource_version
    }

    fn check_namespace(&self, namespace: &str) -> Result<(), ApiError> {
        if self.namespaces.contains(namespace) {
            Ok(())
        } else {
            Err(ApiError::not_found("namespaces", namespace))
        }
    }

    fn check_body_identity(
        incoming: &Incoming,
        namespace: &str,
        name: Option<&str>,
    ) -> Result<(), ApiError> {
        if let (Some(url_name), Some(body_name)) = (name, incoming.name.as_deref())
            && url_name != body_name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({url_name})"
            )));
        }
        if let Some(body_namespace) = incoming.namespace.as_deref()
            && body_namespace != namespace
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        Ok(())
    }

    /// POST: create, 409 AlreadyExists when the name is taken.
    pub fn create(
        &mut self,
        namespace: &str,
        incoming: Incoming,
        manager: &str,
    ) -> Result<&Stored, ApiError> {
        self.check_namespace(namespace)?;
        Store::check_body_identity(&incoming, namespace, None)?;
        let Some(name) = incoming.name.clone() else {
            return Err(ApiError::invalid(
                "",
                vec!["metadata.name: Required value: name or generateName is required".to_owned()],
            ));
        };
        let key = (namespace.to_owned(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(ApiError {
                code: 409,
                reason: "AlreadyExists",
                message: format!("configmaps \"{name}\" already exists"),
                details: json!({"name": name, "kind": "configmaps"}),
            });
        }
        validate(&name, &incoming.fields)?;
        let owners = incoming
            .fields
            .keys()
            .map(|f| (f.clone(), BTreeSet::from([manager.to_owned()])))
            .collect();
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.next_uid);
        self.next_uid += 1;
        let stored = Stored {
            namespace: namespace.to_owned(),
            name,
            uid,
            resource_version: self.bump(),
            fields: incoming.fields,
            owners,
        };
        Ok(self.objects.entry(key).or_insert(stored))
    }

    /// PUT: replace, 404 when missing, 409 Conflict on a stale resourceVersion.
    pub fn replace(
        &mut self,
        namespace: &str,
        name: &str,
        incoming: Incoming,
        manager: &str,
    ) -> Result<&Stored, ApiError> {
        Store::check_body_identity(&incoming, namespace, Some(name))?;
        let key = (namespace.to_owned(), name.to_owned());
        let old = self
            .objects
            .get(&key)
            .ok_or_else(|| ApiError::not_found("configmaps", name))?;
        if let Some(rv) = &incoming.resource_version
            && *rv != old.resource_version.to_string()
        {
            return Err(ApiError::conflict(
                name,
                format!(
                    "Operation cannot be fulfilled on configmaps \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                ),
            ));
        }
        validate(name, &incoming.fields)?;
        validate_update(old, &incoming.fields)?;
        // As the real field manager records an update: the updater owns the fields it
        // changed or added; unchanged fields keep their owners.
        let mut owners = BTreeMap::new();
        for (field, value) in &incoming.fields {
            let set = match old.owners.get(field) {
                Some(set) if old.fields.get(field) == Some(value) => set.clone(),
                _ => BTreeSet::from([manager.to_owned()]),
            };
            owners.insert(field.clone(), set);
        }
        let changed = old.fields != incoming.fields;
        let resource_version = if changed {
            self.bump()
        } else {
            old.resource_version
        };
        let stored = self
            .objects
            .get_mut(&key)
            .ok_or_else(|| ApiError::not_found("configmaps", name))?;
        stored.fields = incoming.fields;
        stored.owners = owners;
        stored.resource_version = resource_version;
        Ok(stored)
    }

    /// PATCH with `application/apply-patch+yaml`: server-side apply. Creates the object when
    /// missing. Fields this manager applied before and left out now are removed (unless
    /// another manager owns them too); a field another manager owns with a different value
    /// is a 409 conflict unless `force`. An apply that changes nothing keeps the
    /// resourceVersion.
    pub fn apply(
        &mut self,
        namespace: &str,
        name: &str,
        incoming: Incoming,
        manager: &str,
        force: bool,
    ) -> Result<(&Stored, bool), ApiError> {
        self.check_namespace(namespace)?;
        Store::check_body_identity(&incoming, namespace, Some(name))?;
        let key = (namespace.to_owned(), name.to_owned());
        let Some(old) = self.objects.get(&key) else {
            let created = self.create(
                namespace,
                Incoming {
                    name: Some(name.to_owned()),
                    ..incoming
                },
                manager,
            )?;
            return Ok((created, true));
        };
        if let Some(rv) = &incoming.resource_version
            && *rv != old.resource_version.to_string()
        {
            return Err(ApiError::conflict(
                name,
                format!(
                    "Operation cannot be fulfilled on configmaps \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                ),
            ));
        }
        let mut conflicts = Vec::new();
        for (field, value) in &incoming.fields {
            let others: Vec<&String> = old
                .owners
                .get(field)
                .map(|set| set.iter().filter(|m| *m != manager).collect())
                .unwrap_or_default();
            if !others.is_empty() && old.fields.get(field) != Some(value) {
                for other in others {
                    conflicts.push(format!("conflict with \"{other}\": {}", field.path()));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            return Err(ApiError::conflict(
                name,
                format!(
                    "Apply failed with {} conflict{}: {}",
                    conflicts.len(),
                    if conflicts.len() == 1 { "" } else { "s" },
                    conflicts.join("; ")
                ),
            ));
        }
        let mut fields = old.fields.clone();
        let mut owners = old.owners.clone();
        // Fields this manager owned and no longer applies.
        for (field, set) in &old.owners {
            if set.contains(manager) && !incoming.fields.contains_key(field) {
                let remaining: BTreeSet<String> =
                    set.iter().filter(|m| *m != manager).cloned().collect();
                if remaining.is_empty() {
                    fields.remove(field);
                    owners.remove(field);
                } else {
                    owners.insert(field.clone(), remaining);
                }
            }
        }
        for (field, value) in &incoming.fields {
            let mut set = if old.fields.get(field) == Some(value) {
                owners.get(field).cloned().unwrap_or_default()
            } else {
                // Forced: the field changes hands.
                BTreeSet::new()
            };
            set.insert(manager.to_owned());
            owners.insert(field.clone(), set);
            fields.insert(field.clone(), value.clone());
        }
        validate(name, &fields)?;
        validate_update(old, &fields)?;
        let changed = fields != old.fields;
        let resource_version = if changed {
            self.bump()
        } else {
            old.resource_version
        };
        let stored = self
            .objects
            .get_mut(&key)
            .ok_or_else(|| ApiError::not_found("configmaps", name))?;
        stored.fields = fields;
        stored.owners = owners;
        stored.resource_version = resource_version;
        Ok((stored, false))
    }

    pub fn delete(&mut self, namespace: &str, name: &str) -> Result<Stored, ApiError> {
        self.bump();
        self.objects
            .remove(&(namespace.to_owned(), name.to_owned()))
            .ok_or_else(|| ApiError::not_found("configmaps", name))
    }

    pub fn get(&self, namespace: &str, name: &str) -> Result<&Stored, ApiError> {
        self.objects
            .get(&(namespace.to_owned(), name.to_owned()))
            .ok_or_else(|| ApiError::not_found("configmaps", name))
    }

    /// The namespace's ConfigMaps whose labels match every requirement, in name order.
    pub fn list(&self, namespace: &str, selector: &[Requirement]) -> Vec<&Stored> {
        self.objects
            .values()
            .filter(|s| s.namespace == namespace)
            .filter(|s| selector.iter().all(|r| r.matches(s)))
            .collect()
    }
}

/// One term of an equality-based label selector.
#[derive(Debug)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
}

impl Requirement {
    fn matches(&self, stored: &Stored) -> bool {
        let label = |k: &str| match stored.fields.get(&Field::Label(k.to_owned())) {
            Some(FieldValue::Text(v)) => Some(v.as_str()),
            _ => None,
        };
        match self {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::NotExists(k) => label(k).is_none(),
        }
    }
}

/// Parses `a=b,c!=d,e,!f`; set-based terms (`in`, `notin`) are refused.
pub fn parse_selector(text: &str) -> Result<Vec<Requirement>, ApiError> {
    let mut out = Vec::new();
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if term.contains('(') {
            return Err(ApiError::bad_request(format!(
                "unable to parse requirement `{term}`: set-based selectors are not supported by this fake server"
            )));
        }
        let requirement = if let Some((k, v)) = term.split_once("!=") {
            Requirement::NotEquals(k.trim().to_owned(), v.trim().to_owned())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            Requirement::Equals(k.trim().to_owned(), v.trim().to_owned())
        } else if let Some(k) = term.strip_prefix('!') {
            Requirement::NotExists(k.trim().to_owned())
        } else {
            Requirement::Exists(term.to_owned())
        };
        out.push(requirement);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Incoming {
        parse_config_map(&value, false).expect("a ConfigMap body")
    }

    fn cm(data: &[(&str, &str)], immutable: Option<bool>) -> Value {
        let data: Map<String, Value> = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let mut value = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x"}, "data": data});
        if let Some(immutable) = immutable {
            value["immutable"] = json!(immutable);
        }
        value
    }

    #[test]
    fn immutable_config_maps_keep_their_data_but_not_their_metadata() {
        let mut store = Store::new(&["ns"]);
        store
            .create("ns", body(cm(&[("k", "v")], Some(true))), "m")
            .expect("create");
        let err = store
            .apply(
                "ns",
                "x",
                body(cm(&[("k", "changed")], Some(true))),
                "m",
                true,
            )
            .expect_err("data is immutable");
        assert_eq!((err.code, err.reason), (422, "Invalid"));
        let err = store
            .apply("ns", "x", body(cm(&[("k", "v")], Some(false))), "m", true)
            .expect_err("immutable stays true");
        assert_eq!(err.code, 422);
        let mut relabelled = cm(&[("k", "v")], Some(true));
        relabelled["metadata"]["annotations"] = json!({"a": "b"});
        let (stored, _) = store
            .apply("ns", "x", body(relabelled), "m", true)
            .expect("metadata may change");
        assert_eq!(stored.annotation("a"), Some("b"));
    }

    #[test]
    fn apply_removes_what_the_manager_stopped_applying_and_keeps_others_fields() {
        let mut store = Store::new(&["ns"]);
        store
            .apply(
                "ns",
                "x",
                body(cm(&[("a", "1"), ("b", "2")], None)),
                "meshc",
                false,
            )
            .expect("apply");
        let mut other = store.get("ns", "x").expect("get").clone();
        other
            .fields
            .insert(Field::Data("c".into()), FieldValue::Text("3".into()));
        store
            .replace("ns", "x", body(other.to_json(true)), "kubectl")
            .expect("replace");
        let (stored, created) = store
            .apply("ns", "x", body(cm(&[("a", "1")], None)), "meshc", false)
            .expect("apply");
        assert!(!created);
        let keys: Vec<&Field> = stored.fields.keys().collect();
        assert_eq!(
            keys,
            vec![&Field::Data("a".into()), &Field::Data("c".into())]
        );
    }

    #[test]
    fn conflicts_need_force_and_stale_versions_are_refused() {
        let mut store = Store::new(&["ns"]);
        store
            .create("ns", body(cm(&[("a", "1")], None)), "kubectl")
            .expect("create");
        let err = store
            .apply("ns", "x", body(cm(&[("a", "2")], None)), "meshc", false)
            .expect_err("conflict");
        assert_eq!(err.code, 409);
        assert!(
            err.message.contains("conflict with \"kubectl\": .data.a"),
            "{}",
            err.message
        );
        let version = store.get("ns", "x").expect("get").resource_version;
        let (stored, _) = store
            .apply("ns", "x", body(cm(&[("a", "2")], None)), "meshc", true)
            .expect("forced");
        assert!(stored.resource_version > version);
        let mut stale = cm(&[("a", "3")], None);
        stale["metadata"]["resourceVersion"] = json!(version.to_string());
        let err = store
            .apply("ns", "x", body(stale), "meshc", true)
            .expect_err("stale");
        assert_eq!((err.code, err.reason), (409, "Conflict"));
        // An apply that changes nothing keeps the version.
        let now = store.get("ns", "x").expect("get").resource_version;
        store
            .apply("ns", "x", body(cm(&[("a", "2")], None)), "meshc", true)
            .expect("same");
        assert_eq!(store.get("ns", "x").expect("get").resource_version, now);
    }

    #[test]
    fn the_one_mebibyte_limit_and_missing_namespaces() {
        let mut store = Store::new(&["ns"]);
        let big = "x".repeat(MAX_CONFIG_MAP_BYTES);
        let err = store
            .create("ns", body(cm(&[("k", &big)], None)), "m")
            .expect_err("too big");
        assert_eq!(err.code, 422);
        assert!(err.message.contains("1048576"), "{}", err.message);
        let err = store
            .create("nope", body(cm(&[], None)), "m")
            .expect_err("no namespace");
        assert_eq!(
            (err.code, err.message.as_str()),
            (404, "namespaces \"nope\" not found")
        );
        store
            .create("ns", body(cm(&[], None)), "m")
            .expect("create");
        let err = store
            .create("ns", body(cm(&[], None)), "m")
            .expect_err("exists");
        assert_eq!((err.code, err.reason), (409, "AlreadyExists"));
    }
}
