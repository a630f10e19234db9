//! The deployment files agree with the code: `compose.yaml` sets only real configuration keys
//! and builds only real binaries, every Dragoman container has a health check that can pass,
//! and the Asterisk files under `asterisk/` send calls to the Stasis application the gateway
//! serves, on the ports compose publishes.
//!
//! Docker cannot run in the test suite, so these are static checks of the files as written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_norway::Value;

/// The Stasis application the ari-gateway subscribes to by default.
const STASIS_APP: &str = "dragoman";
/// Channel variables the gateway reads from a call entering Stasis.
const LANGUAGE_VARIABLE: &str = "DRAGOMAN_LANGUAGE";
const TARGETS_VARIABLE: &str = "DRAGOMAN_TARGETS";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

/// `DRAGOMAN_*` names listed in `.env.example` (`#DRAGOMAN_X__Y=default` lines).
fn env_example_keys() -> BTreeSet<String> {
    let keys: BTreeSet<String> = read(".env.example")
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .filter(|line| line.starts_with("DRAGOMAN_"))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.to_owned()))
        .collect();
    assert!(keys.contains("DRAGOMAN_BUS__URL"), ".env.example lists no keys: {keys:?}");
    keys
}

/// Every key the code knows, from the config structs themselves.
fn code_keys() -> BTreeSet<String> {
    dragoman_runtime::config::reference().into_iter().map(|key| key.env).collect()
}

/// `compose.yaml` with YAML merge keys (`<<: *anchor`) applied, as Compose applies them.
fn compose() -> Value {
    let mut value: Value = serde_norway::from_str(&read("compose.yaml")).expect("compose.yaml is valid YAML");
    value.apply_merge().expect("merge keys in compose.yaml apply");
    // Merge keys nested below the top level (service.environment) are applied per mapping.
    fn merge_all(value: &mut Value) {
        if let Value::Mapping(map) = value {
            for (_, child) in map.iter_mut() {
                child.apply_merge().expect("nested merge keys apply");
                merge_all(child);
            }
        }
    }
    merge_all(&mut value);
    value
}

fn services(compose: &Value) -> Vec<(String, Value)> {
    let services = compose.get("services").and_then(Value::as_mapping).expect("compose.yaml has services");
    services
        .iter()
        .map(|(name, service)| (name.as_str().expect("service names are strings").to_owned(), service.clone()))
        .collect()
}

/// The image's binary, for services built from the Dockerfile.
fn service_binary(service: &Value) -> Option<String> {
    let build = service.get("build")?;
    let binary = build.get("args")?.get("SERVICE")?.as_str()?;
    Some(binary.to_owned())
}

fn dragoman_services(compose: &Value) -> Vec<(String, String, Value)> {
    let found: Vec<_> = services(compose)
        .into_iter()
        .filter_map(|(name, service)| service_binary(&service).map(|binary| (name, binary, service)))
        .collect();
    assert!(!found.is_empty(), "compose.yaml builds no Dragoman service");
    found
}

/// A service's environment as name → value, from either of Compose's two forms.
fn environment(service: &Value) -> BTreeMap<String, String> {
    match service.get("environment") {
        None => BTreeMap::new(),
        Some(Value::Mapping(map)) => map
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => serde_norway::to_string(other).expect("scalar").trim().to_owned(),
                };
                (name.as_str().expect("variable names are strings").to_owned(), value)
            })
            .collect(),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|item| {
                let item = item.as_str().expect("environment entries are strings");
                let (name, value) = item.split_once('=').unwrap_or((item, ""));
                (name.to_owned(), value.to_owned())
            })
            .collect(),
        Some(other) => panic!("environment is neither a mapping nor a list: {other:?}"),
    }
}

/// Names used as `${NAME}`, `${NAME:-default}`, `${NAME:?error}` … in `text` (`$${` is an escape).
fn interpolated_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'$' && bytes[i + 1] == b'$' {
            i += 2;
            continue;
        }
        if bytes[i] == b'$' && bytes[i + 1] == b'{' {
            let start = i + 2;
            let end = text[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(text.len(), |offset| start + offset);
            names.insert(text[start..end].to_owned());
            i = end;
            continue;
        }
        i += 1;
    }
    names
}

/// Binary names of the workspace: `[[bin]]` entries, and `src/main.rs` under the package name.
fn workspace_binaries() -> BTreeSet<String> {
    let mut binaries = BTreeSet::new();
    let crates = repo_root().join("crates");
    for entry in std::fs::read_dir(&crates).expect("crates/ is readable") {
        let dir = entry.expect("directory entry").path();
        let manifest = dir.join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        let manifest: toml::Table = text.parse().unwrap_or_else(|err| panic!("{}: {err}", manifest.display()));
        let bins = manifest.get("bin").and_then(toml::Value::as_array).cloned().unwrap_or_default();
        for bin in &bins {
            if let Some(name) = bin.get("name").and_then(toml::Value::as_str) {
                binaries.insert(name.to_owned());
            }
        }
        let package = manifest.get("package").expect("[package]");
        let autobins = package.get("autobins").and_then(toml::Value::as_bool).unwrap_or(true);
        if bins.is_empty() && autobins && dir.join("src/main.rs").exists() {
            binaries.insert(package.get("name").and_then(toml::Value::as_str).expect("package name").to_owned());
        }
    }
    assert!(binaries.contains("dragoman"), "the CLI binary was not found: {binaries:?}");
    binaries
}

#[test]
fn compose_sets_only_real_config_keys() {
    let listed = env_example_keys();
    let known = code_keys();
    let check = |name: &str, place: &str| {
        if !name.starts_with("DRAGOMAN_") {
            return;
        }
        assert!(
            known.contains(name),
            "{place} uses {name}, which is not a configuration key: the service would refuse to start"
        );
        assert!(
            listed.contains(name),
            "{place} uses {name}, which .env.example does not list (run `just env-example`)"
        );
    };

    let compose = compose();
    let mut seen = 0;
    for (name, service) in services(&compose) {
        for variable in environment(&service).keys() {
            check(variable, &format!("compose.yaml service {name}"));
            seen += 1;
        }
    }
    assert!(seen > 0, "no environment variables found in compose.yaml: the parser is broken");
    // `.env` feeds both ${...} substitution and every container's environment (env_file), so a
    // substitution variable named DRAGOMAN_* must be a key as well.
    for name in interpolated_names(&read("compose.yaml")) {
        check(&name, "a ${...} substitution in compose.yaml");
    }
    // The image's own defaults.
    for line in read("Dockerfile").lines() {
        if let Some(rest) = line.trim().strip_prefix("ENV ") {
            for assignment in rest.split_whitespace() {
                let name = assignment.split_once('=').map_or(assignment, |(name, _)| name);
                check(name, "Dockerfile ENV");
            }
        }
    }
}

/// A value as compose would pass it: `${NAME:-default}` becomes the default, and a required
/// `${NAME:?message}` a stand-in, as if the user had set it.
fn substitute_as_unset(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map(|e| start + e).expect("closing brace");
        let inner = &rest[start + 2..end];
        if let Some((_, default)) = inner.split_once(":-") {
            out.push_str(default);
        } else if inner.contains(":?") {
            out.push_str("stand-in-secret");
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_service_environment_is_a_valid_configuration() {
    for (name, _, service) in dragoman_services(&compose()) {
        let environment = environment(&service);
        figment::Jail::expect_with(|jail| {
            for (variable, value) in &environment {
                jail.set_env(variable, substitute_as_unset(value));
            }
            if let Err(err) = dragoman_runtime::config::Config::load(None) {
                panic!("service {name}: its compose environment is not a valid configuration: {err}");
            }
            Ok(())
        });
    }
}

#[test]
fn the_substitution_scanner_finds_names() {
    let names = interpolated_names("a: ${ONE}\nb: ${TWO:-x}\nc: $${NOT}\nd: ${THREE:?set it}");
    assert_eq!(names, BTreeSet::from(["ONE".to_owned(), "TWO".to_owned(), "THREE".to_owned()]));
    assert_eq!(substitute_as_unset("a${X:-json}b${Y:?set Y}c"), "ajsonbstand-in-secretc");
}

#[test]
fn every_image_is_a_workspace_binary_and_every_service_has_one() {
    let binaries = workspace_binaries();
    let compose = compose();
    let mut built = BTreeSet::new();
    for (name, binary, service) in dragoman_services(&compose) {
        assert!(
            binaries.contains(&binary),
            "compose.yaml service {name} builds SERVICE={binary}, not one of {binaries:?}"
        );
        let context = service.get("build").and_then(|b| b.get("context")).and_then(Value::as_str);
        assert_eq!(context, Some("."), "service {name} must build from the repository root");
        built.insert(binary);
    }
    // Every service binary runs in its own container (the CLI, `dragoman`, is not a service).
    for binary in binaries.iter().filter(|b| b.starts_with("dragoman-")) {
        assert!(built.contains(binary), "{binary} has no service in compose.yaml");
    }

    // The Dockerfile accepts exactly the binaries there are, and defaults to one of them.
    let dockerfile = read("Dockerfile");
    let allowed: BTreeSet<String> = dockerfile
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("dragoman|"))
        .expect("Dockerfile lists the allowed SERVICE values in a case pattern")
        .split(')')
        .next()
        .unwrap_or_default()
        .split('|')
        .map(str::to_owned)
        .collect();
    assert_eq!(allowed, binaries, "the Dockerfile's SERVICE check and the workspace's binaries differ");
    let default = dockerfile
        .lines()
        .find_map(|line| line.trim().strip_prefix("ARG SERVICE="))
        .expect("Dockerfile has a default SERVICE");
    assert!(binaries.contains(default), "Dockerfile's default SERVICE={default} is not a binary");
}

#[test]
fn health_checks_probe_the_ops_port_and_dependencies_can_become_healthy() {
    let compose = compose();
    let all = services(&compose);
    let names: BTreeSet<&str> = all.iter().map(|(name, _)| name.as_str()).collect();

    for (name, _, service) in dragoman_services(&compose) {
        let ops = environment(&service)
            .get("DRAGOMAN_TELEMETRY__METRICS_LISTEN")
            .cloned()
            .unwrap_or_else(|| panic!("service {name} must set DRAGOMAN_TELEMETRY__METRICS_LISTEN beyond loopback"));
        let port = ops.rsplit_once(':').map(|(_, port)| port).expect("host:port");
        assert!(ops.starts_with("0.0.0.0:"), "service {name}: ops endpoints on {ops} cannot be reached");
        let test = service
            .get("healthcheck")
            .and_then(|h| h.get("test"))
            .and_then(Value::as_sequence)
            .unwrap_or_else(|| panic!("service {name} has no healthcheck test"));
        let words: Vec<&str> = test.iter().map(|w| w.as_str().expect("healthcheck words are strings")).collect();
        // The exec form through bash: CMD-SHELL runs /bin/sh, which is dash in Debian and has no
        // /dev/tcp, so that check could never pass.
        assert_eq!(words.get(..3), Some(&["CMD", "bash", "-c"][..]), "service {name}: healthcheck must run bash");
        let script = words.get(3).expect("healthcheck script");
        assert!(script.contains(&format!("/dev/tcp/127.0.0.1/{port}")), "service {name} probes another port: {script}");
        assert!(script.contains("/healthz"), "service {name} must probe /healthz: {script}");
    }

    for (name, service) in &all {
        let Some(depends_on) = service.get("depends_on") else { continue };
        let conditions: Vec<(String, String)> = match depends_on {
            Value::Sequence(list) => {
                list.iter().map(|d| (d.as_str().expect("name").to_owned(), "service_started".to_owned())).collect()
            }
            Value::Mapping(map) => map
                .iter()
                .map(|(dependency, spec)| {
                    let condition = spec.get("condition").and_then(Value::as_str).unwrap_or("service_started");
                    (dependency.as_str().expect("name").to_owned(), condition.to_owned())
                })
                .collect(),
            other => panic!("service {name}: depends_on is {other:?}"),
        };
        for (dependency, condition) in conditions {
            assert!(names.contains(dependency.as_str()), "service {name} depends on unknown service {dependency}");
            if condition == "service_healthy" {
                let (_, target) = all.iter().find(|(n, _)| *n == dependency).expect("dependency exists");
                assert!(
                    target.get("healthcheck").and_then(|h| h.get("test")).is_some(),
                    "service {name} waits for {dependency} to be healthy, but {dependency} has no healthcheck"
                );
            }
        }
    }
}

#[test]
fn the_api_listens_beyond_loopback_and_refuses_to_start_without_a_token() {
    let compose = compose();
    let (name, _, api) = dragoman_services(&compose)
        .into_iter()
        .find(|(_, binary, _)| binary == "dragoman-api")
        .expect("compose.yaml runs dragoman-api");
    let env = environment(&api);
    assert_eq!(env.get("DRAGOMAN_API__LISTEN").map(String::as_str), Some("0.0.0.0:8080"), "service {name}");
    let tokens = env.get("DRAGOMAN_API__TOKENS").expect("DRAGOMAN_API__TOKENS is set");
    assert!(tokens.starts_with("${DRAGOMAN_API__TOKENS:?"), "compose must fail clearly without a token: {tokens}");
}

#[test]
fn models_are_mounted_read_only_into_the_workers() {
    let compose = compose();
    for (name, binary, service) in dragoman_services(&compose) {
        if !matches!(binary.as_str(), "dragoman-stt-worker" | "dragoman-mt-worker") {
            continue;
        }
        let volumes: Vec<&str> = service
            .get("volumes")
            .and_then(Value::as_sequence)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert!(volumes.contains(&"models:/models:ro"), "service {name} must mount models read-only: {volumes:?}");
    }
}

/// `[section]` → `key = value` pairs of an Asterisk config file (`;` starts a comment; a section
/// name may repeat, as in pjsip.conf).
fn asterisk_config(file: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut sections: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in read(&format!("asterisk/{file}")).lines() {
        let line = line.split(';').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            sections.push((name.to_owned(), Vec::new()));
        } else if let Some((key, value)) = line.split_once('=') {
            let key = key.trim().trim_end_matches('>').trim().to_owned();
            let section = sections.last_mut().unwrap_or_else(|| panic!("{file}: `{line}` before any section"));
            section.1.push((key, value.trim().to_owned()));
        }
    }
    sections
}

fn setting<'a>(sections: &'a [(String, Vec<(String, String)>)], section: &str, key: &str) -> Option<&'a str> {
    sections
        .iter()
        .filter(|(name, _)| name == section)
        .flat_map(|(_, pairs)| pairs)
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_dialplan_enters_the_gateways_stasis_app_with_the_language_variables() {
    let dialplan = asterisk_config("extensions.conf");
    let mut apps = Vec::new();
    let mut variables = BTreeSet::new();
    for (_, pairs) in &dialplan {
        for (key, value) in pairs {
            if key != "exten" && key != "same" {
                continue;
            }
            if let Some(rest) = value.split_once("Stasis(").map(|(_, rest)| rest) {
                let app = rest.split([',', ')']).next().unwrap_or_default().trim();
                apps.push(app.to_owned());
            }
            if let Some(rest) = value.split_once("Set(").map(|(_, rest)| rest) {
                variables.insert(rest.split('=').next().unwrap_or_default().trim().to_owned());
            }
        }
    }
    assert!(!apps.is_empty(), "extensions.conf never enters Stasis");
    for app in &apps {
        assert_eq!(app, STASIS_APP, "extensions.conf sends calls to Stasis app {app}, the gateway serves {STASIS_APP}");
    }
    for variable in [LANGUAGE_VARIABLE, TARGETS_VARIABLE] {
        assert!(variables.contains(variable), "extensions.conf never sets {variable}");
    }
}

#[test]
fn asterisk_files_are_mounted_and_match_the_published_ports() {
    let compose = compose();
    let (_, asterisk) =
        services(&compose).into_iter().find(|(name, _)| name == "asterisk").expect("compose.yaml runs asterisk");

    // Every file under asterisk/ is mounted, and every mount source exists.
    let mounted: BTreeSet<String> = asterisk
        .get("volumes")
        .and_then(Value::as_sequence)
        .expect("asterisk mounts its config")
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|volume| volume.split(':').next())
        .filter_map(|source| source.strip_prefix("./asterisk/"))
        .map(str::to_owned)
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(repo_root().join("asterisk"))
        .expect("asterisk/ exists")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".conf"))
        .collect();
    assert_eq!(mounted, present, "compose.yaml mounts a different set of files than asterisk/ holds");

    let ports: Vec<String> = asterisk
        .get("ports")
        .and_then(Value::as_sequence)
        .expect("asterisk publishes ports")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();

    // ARI: enabled, on the port compose publishes, with the gateway's read-write user.
    let http = asterisk_config("http.conf");
    assert_eq!(setting(&http, "general", "enabled"), Some("yes"));
    let ari_port = setting(&http, "general", "bindport").expect("http.conf bindport");
    assert!(ports.iter().any(|p| p.ends_with(&format!(":{ari_port}"))), "ARI port {ari_port} not published: {ports:?}");
    let ari = asterisk_config("ari.conf");
    assert_eq!(setting(&ari, "general", "enabled"), Some("yes"));
    assert_eq!(setting(&ari, STASIS_APP, "type"), Some("user"), "ari.conf has no `{STASIS_APP}` user");
    assert_eq!(setting(&ari, STASIS_APP, "read_only"), Some("no"));

    // RTP: the range in rtp.conf is the one published.
    let rtp = asterisk_config("rtp.conf");
    let start = setting(&rtp, "general", "rtpstart").expect("rtpstart");
    let end = setting(&rtp, "general", "rtpend").expect("rtpend");
    let range = format!("{start}-{end}:{start}-{end}/udp");
    assert!(ports.contains(&range), "rtp.conf range {start}-{end} is not published as {range}: {ports:?}");
}
