//! A small reader for the ARI specification: the Swagger 1.1 files Asterisk ships in
//! `rest-api/` (`resources.json` and `api-docs/*.json`).
//!
//! It exists so that tests can check the fake ARI server (and anything else that speaks ARI)
//! against the real contract instead of against our reading of it:
//!
//! - [`Spec::find_operation`] maps a concrete request (`POST /ari/channels/abc/answer`) to the
//!   operation the spec declares for it, with its parameters, success type and error codes;
//! - [`Spec::validate`] checks a JSON value against a model or a data type such as
//!   `List[Channel]`, and returns every problem found (missing required fields, wrong types,
//!   values outside `allowableValues`, unknown fields, malformed `Date`s);
//! - [`Spec::validate_message`] checks a WebSocket frame, following the `type` discriminator of
//!   the `Message` model to the event model it names.
//!
//! Swagger 1.1 models have no `extends`: a model lists its children in `subTypes`, and a child
//! inherits its ancestors' properties (`StasisStart` ⊂ `Event` ⊂ `Message`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The spec vendored in this repository (`asterisk/ari-spec`, Asterisk 22.10.1).
pub fn vendored_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../asterisk/ari-spec")
}

/// Why the spec could not be loaded.
#[derive(Debug)]
pub struct SpecError {
    /// The file being read.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ari spec {}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for SpecError {}

/// The whole ARI specification: every operation of every resource and every model.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `apiVersion` from `resources.json` (e.g. `10.0.0` for Asterisk 22).
    pub api_version: String,
    /// All operations, in file order.
    pub operations: Vec<Operation>,
    /// All models by id.
    pub models: BTreeMap<String, Model>,
}

/// One REST (or WebSocket upgrade) operation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// The resource file it comes from (`channels`, `bridges`, …).
    pub resource: String,
    /// Path template relative to the base path, e.g. `/channels/{channelId}/answer`.
    pub path: String,
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub http_method: String,
    /// The operation's name, e.g. `answer`.
    pub nickname: String,
    /// The success type: `void`, a model id, `List[Model]`, `binary`.
    pub response_class: String,
    /// `Some("websocket")` for the events WebSocket.
    pub upgrade: Option<String>,
    /// Declared parameters.
    pub parameters: Vec<Parameter>,
    /// Declared error responses.
    pub error_responses: Vec<ErrorResponse>,
}

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// In the URL path.
    Path,
    /// In the query string.
    Query,
    /// In the JSON body.
    Body,
    /// Anything else the spec may say (`header`, `form`).
    Other,
}

/// One declared parameter.
#[derive(Debug, Clone)]
pub struct Parameter {
    /// Its name, e.g. `channelId`.
    pub name: String,
    /// Where it travels.
    pub param_type: ParamType,
    /// Whether a request without it is invalid.
    pub required: bool,
    /// Whether it takes a comma-separated list.
    pub allow_multiple: bool,
    /// Its data type (`string`, `int`, `boolean`, `containers`, …).
    pub data_type: String,
    /// Its default, if declared.
    pub default_value: Option<Value>,
    /// The values it may take, if restricted.
    pub allowable_values: Option<AllowableValues>,
}

/// `allowableValues` of a parameter or property.
#[derive(Debug, Clone, PartialEq)]
pub enum AllowableValues {
    /// One of these strings.
    List(Vec<String>),
    /// A number in this range (bounds inclusive).
    Range {
        /// Lower bound.
        min: Option<f64>,
        /// Upper bound.
        max: Option<f64>,
    },
}

/// One declared error response.
#[derive(Debug, Clone)]
pub struct ErrorResponse {
    /// HTTP status code.
    pub code: u16,
    /// What the spec says it means.
    pub reason: String,
}

/// A model (`Channel`, `StasisStart`, …).
#[derive(Debug, Clone)]
pub struct Model {
    /// Its id.
    pub id: String,
    /// Its own properties (inherited ones live on its ancestors).
    pub properties: BTreeMap<String, Property>,
    /// Models that extend it.
    pub sub_types: Vec<String>,
    /// The property naming the concrete subtype (`type` on `Message`).
    pub discriminator: Option<String>,
}

/// One property of a model.
#[derive(Debug, Clone)]
pub struct Property {
    /// Its data type.
    pub data_type: String,
    /// Whether a value without it is invalid.
    pub required: bool,
    /// The values it may take, if restricted.
    pub allowable_values: Option<AllowableValues>,
}

impl Spec {
    /// The spec vendored in this repository; panics with the reason if it cannot be read,
    /// which is a broken checkout rather than a test failure.
    pub fn vendored() -> Spec {
        Spec::load(&vendored_dir()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Loads `resources.json` from `dir` and every `api-docs` file it lists.
    pub fn load(dir: &Path) -> Result<Spec, SpecError> {
        let resources = read_json(&dir.join("resources.json"))?;
        let api_version = resources["apiVersion"].as_str().unwrap_or_default().to_owned();
        let mut spec = Spec { api_version, operations: Vec::new(), models: BTreeMap::new() };
        let listed = resources["apis"].as_array().cloned().unwrap_or_default();
        for entry in listed {
            let Some(listing) = entry["path"].as_str() else { continue };
            // "/api-docs/channels.{format}" → api-docs/channels.json
            let relative = listing.trim_start_matches('/').replace("{format}", "json");
            let path = dir.join(&relative);
            let resource = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            spec.add_file(&resource, &read_json(&path)?, &path)?;
        }
        Ok(spec)
    }

    fn add_file(&mut self, resource: &str, doc: &Value, path: &Path) -> Result<(), SpecError> {
        let bad = |reason: String| SpecError { path: path.to_owned(), reason };
        for api in doc["apis"].as_array().ok_or_else(|| bad("no apis".into()))? {
            let api_path = api["path"].as_str().ok_or_else(|| bad("api without path".into()))?;
            for op in api["operations"].as_array().into_iter().flatten() {
                let parameters = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| Parameter {
                        name: p["name"].as_str().unwrap_or_default().to_owned(),
                        param_type: match p["paramType"].as_str() {
                            Some("path") => ParamType::Path,
                            Some("query") => ParamType::Query,
                            Some("body") => ParamType::Body,
                            _ => ParamType::Other,
                        },
                        required: p["required"].as_bool().unwrap_or(false),
                        allow_multiple: p["allowMultiple"].as_bool().unwrap_or(false),
                        data_type: p["dataType"].as_str().unwrap_or_default().to_owned(),
                        default_value: p.get("defaultValue").cloned(),
                        allowable_values: allowable_values(&p["allowableValues"]),
                    })
                    .collect();
                let mut error_responses = Vec::new();
                for e in op["errorResponses"].as_array().into_iter().flatten() {
                    // Most codes are numbers; a few files write them as strings ("404").
                    let code = match &e["code"] {
                        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                        Value::String(s) => s.parse().ok(),
                        _ => None,
                    }
                    .ok_or_else(|| bad(format!("bad error code in {api_path}")))?;
                    let reason = e["reason"].as_str().unwrap_or_default().to_owned();
                    error_responses.push(ErrorResponse { code, reason });
                }
                self.operations.push(Operation {
                    resource: resource.to_owned(),
                    path: api_path.to_owned(),
                    http_method: op["httpMethod"].as_str().unwrap_or_default().to_uppercase(),
                    nickname: op["nickname"].as_str().unwrap_or_default().to_owned(),
                    response_class: op["responseClass"].as_str().unwrap_or("void").to_owned(),
                    upgrade: op["upgrade"].as_str().map(str::to_owned),
                    parameters,
                    error_responses,
                });
            }
        }
        for (id, model) in doc["models"].as_object().into_iter().flatten() {
            let properties = model["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, p)| {
                    let property = Property {
                        data_type: p["type"].as_str().unwrap_or_default().to_owned(),
                        required: p["required"].as_bool().unwrap_or(false),
                        allowable_values: allowable_values(&p["allowableValues"]),
                    };
                    (name.clone(), property)
                })
                .collect();
            let sub_types = model["subTypes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect();
            let discriminator = model["discriminator"].as_str().map(str::to_owned);
            self.models.insert(id.clone(), Model { id: id.clone(), properties, sub_types, discriminator });
        }
        Ok(())
    }

    /// The operation that serves `method` on `path`. `path` may carry the `/ari` base path and a
    /// query string; both are ignored. Literal segments win over `{parameters}`, so
    /// `/channels/externalMedia` is `externalMedia`, not `originateWithId`.
    pub fn find_operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let path = path.split('?').next().unwrap_or_default();
        let path = path.strip_prefix("/ari").unwrap_or(path);
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.operations
            .iter()
            .filter(|op| op.http_method.eq_ignore_ascii_case(method))
            .filter_map(|op| {
                let template: Vec<&str> = op.path.trim_matches('/').split('/').collect();
                if template.len() != segments.len() {
                    return None;
                }
                let mut literals = 0;
                for (t, s) in template.iter().zip(&segments) {
                    if t.starts_with('{') && t.ends_with('}') {
                        if s.is_empty() {
                            return None;
                        }
                    } else if t == s {
                        literals += 1;
                    } else {
                        return None;
                    }
                }
                Some((literals, op))
            })
            .max_by_key(|(literals, _)| *literals)
            .map(|(_, op)| op)
    }

    /// The operation with this nickname in this resource file (`channels`, `answer`).
    pub fn operation(&self, resource: &str, nickname: &str) -> Option<&Operation> {
        self.operations.iter().find(|op| op.resource == resource && op.nickname == nickname)
    }

    /// The model this one extends (Swagger 1.1 says it the other way round, in `subTypes`).
    pub fn parent_of(&self, model: &str) -> Option<&Model> {
        self.models.values().find(|m| m.sub_types.iter().any(|s| s == model))
    }

    /// A model's own and inherited properties, ancestors first.
    pub fn all_properties(&self, model: &str) -> BTreeMap<&str, &Property> {
        let mut chain = Vec::new();
        let mut current = self.models.get(model);
        while let Some(m) = current {
            chain.push(m);
            current = self.parent_of(&m.id);
        }
        chain.iter().rev().flat_map(|m| m.properties.iter().map(|(k, v)| (k.as_str(), v))).collect()
    }

    /// Checks a WebSocket frame against `Message`, following its `type` to the event model.
    pub fn validate_message(&self, value: &Value) -> Vec<String> {
        self.validate("Message", value)
    }

    /// Checks `value` against a data type: a model id, `List[...]`, or a primitive (`string`,
    /// `int`, `long`, `double`, `boolean`, `Date`, `object`). Returns every problem found, each
    /// naming the JSON path (`$.channel.caller.number`); empty means valid.
    pub fn validate(&self, data_type: &str, value: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        self.check(data_type, None, value, "$", &mut problems);
        problems
    }

    fn check(
        &self,
        data_type: &str,
        allowed: Option<&AllowableValues>,
        value: &Value,
        at: &str,
        problems: &mut Vec<String>,
    ) {
        if let Some(inner) = data_type.strip_prefix("List[").and_then(|t| t.strip_suffix(']')) {
            match value.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.check(inner, allowed, item, &format!("{at}[{i}]"), problems);
                    }
                }
                None => problems.push(format!("{at}: expected {data_type}, got {}", kind(value))),
            }
            return;
        }
        let type_ok = match data_type {
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "int" | "long" => value.is_i64() || value.is_u64(),
            "double" | "float" => value.is_number(),
            "object" | "containers" => value.is_object(),
            "Date" => match value.as_str() {
                Some(s) => {
                    if !is_ari_date(s) {
                        problems.push(format!("{at}: {s:?} is not an ARI date (%FT%T.%q%z)"));
                    }
                    true
                }
                None => false,
            },
            model => {
                if self.models.contains_key(model) {
                    self.check_model(model, value, at, problems);
                } else {
                    problems.push(format!("{at}: unknown data type {model}"));
                }
                return;
            }
        };
        if !type_ok {
            problems.push(format!("{at}: expected {data_type}, got {}", kind(value)));
            return;
        }
        match allowed {
            Some(AllowableValues::List(values)) => {
                if let Some(s) = value.as_str()
                    && !values.iter().any(|v| v == s)
                {
                    problems.push(format!("{at}: {s:?} is not one of {values:?}"));
                }
            }
            Some(AllowableValues::Range { min, max }) => {
                if let Some(n) = value.as_f64()
                    && (min.is_some_and(|min| n < min) || max.is_some_and(|max| n > max))
                {
                    problems.push(format!("{at}: {n} is outside {min:?}..={max:?}"));
                }
            }
            None => {}
        }
    }

    fn check_model(&self, model: &str, value: &Value, at: &str, problems: &mut Vec<String>) {
        let Some(object) = value.as_object() else {
            problems.push(format!("{at}: expected {model} object, got {}", kind(value)));
            return;
        };
        // A polymorphic model: the discriminator names the concrete model, which must be this
        // one or one of its descendants.
        let mut concrete = model.to_owned();
        if let Some(field) = self.discriminator_of(model) {
            match object.get(&field).and_then(Value::as_str) {
                Some(name) if self.models.contains_key(name) && self.is_a(name, model) => concrete = name.to_owned(),
                Some(name) => {
                    problems.push(format!("{at}.{field}: {name:?} is not a known subtype of {model}"));
                    return;
                }
                None => {
                    problems.push(format!("{at}.{field}: missing discriminator of {model}"));
                    return;
                }
            }
        }
        let properties = self.all_properties(&concrete);
        for (name, property) in &properties {
            match object.get(*name) {
                Some(v) => {
                    let path = format!("{at}.{name}");
                    self.check(&property.data_type, property.allowable_values.as_ref(), v, &path, problems);
                }
                None if property.required => problems.push(format!("{at}: {concrete} lacks required {name}")),
                None => {}
            }
        }
        for name in object.keys() {
            if !properties.contains_key(name.as_str()) {
                problems.push(format!("{at}.{name}: not a property of {concrete}"));
            }
        }
    }

    fn discriminator_of(&self, model: &str) -> Option<String> {
        let mut current = self.models.get(model);
        while let Some(m) = current {
            if let Some(d) = &m.discriminator {
                return Some(d.clone());
            }
            current = self.parent_of(&m.id);
        }
        None
    }

    fn is_a(&self, model: &str, ancestor: &str) -> bool {
        let mut current = Some(model.to_owned());
        while let Some(m) = current {
            if m == ancestor {
                return true;
            }
            current = self.parent_of(&m).map(|p| p.id.clone());
        }
        false
    }
}

/// Whether `s` is a timestamp as Asterisk writes them: `2026-01-02T10:11:12.345+0000`
/// (`%FT%T.%q%z`: milliseconds, offset without a colon).
pub fn is_ari_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| b.get(range).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    b.len() == 28
        && digits(0..4)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && digits(20..23)
        && matches!(b[23], b'+' | b'-')
        && digits(24..28)
        && chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f%z").is_ok()
}

fn allowable_values(v: &Value) -> Option<AllowableValues> {
    match v["valueType"].as_str()? {
        "LIST" => Some(AllowableValues::List(
            v["values"].as_array()?.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect(),
        )),
        "RANGE" => Some(AllowableValues::Range { min: v["min"].as_f64(), max: v["max"].as_f64() }),
        _ => None,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn read_json(path: &Path) -> Result<Value, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| SpecError { path: path.to_owned(), reason: e.to_string() })?;
    serde_json::from_str(&text).map_err(|e| SpecError { path: path.to_owned(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_follow_asterisk_format() {
        assert!(is_ari_date("2026-01-02T10:11:12.345+0000"));
        assert!(!is_ari_date("2026-01-02T10:11:12.345+00:00"));
        assert!(!is_ari_date("2026-01-02T10:11:12Z"));
    }

    #[test]
    fn finds_literal_routes_before_parameters() {
        let spec = Spec::vendored();
        let op = |m, p| spec.find_operation(m, p).map(|o| o.nickname.as_str());
        assert_eq!(op("POST", "/ari/channels/externalMedia?app=x"), Some("externalMedia"));
        assert_eq!(op("POST", "/ari/channels/1234.5"), Some("originateWithId"));
        assert_eq!(op("POST", "/channels/1234.5/answer"), Some("answer"));
        assert_eq!(op("PATCH", "/channels/1234.5/answer"), None);
    }

    #[test]
    fn validation_reports_each_problem() {
        let spec = Spec::vendored();
        let bad = json!({"type": "StasisStart", "application": "a", "timestamp": "yesterday",
                         "args": [1], "channel": {"id": "1"}, "extra": true});
        let problems = spec.validate_message(&bad);
        for expected in ["$.timestamp", "$.args[0]", "lacks required name", "$.extra"] {
            assert!(problems.iter().any(|p| p.contains(expected)), "{expected} missing in {problems:?}");
        }
        let unknown = json!({"type": "NoSuchEvent"});
        assert_eq!(spec.validate_message(&unknown).len(), 1);
    }
}
