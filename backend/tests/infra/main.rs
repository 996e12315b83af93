//! The deployment files under `infra/` are not run here (there is no container engine), so
//! this checks what would otherwise go stale unnoticed: every YAML file parses; every
//! variable that compose, the Dockerfile and the Kubernetes manifests give the backend is
//! accepted by the real config loader (the built binary's `check-config`, with each
//! `*_FILE` secret in a temp file), and a misspelled one is refused; and the ports, probe
//! paths and the nginx upstream agree with the address the backend listens on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod compose;
mod k8s;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_norway::Value;

/// What the backend reads besides `SHARDROP__SECTION__KEY`; any other `SHARDROP_…` is a typo.
const PLAIN_VARS: [&str; 3] = ["SHARDROP_LISTEN", "SHARDROP_DATA_DIR", "SHARDROP_LOG"];

/// A variable as a deployment file sets it, and where, for the failure messages.
#[derive(Clone, Debug)]
struct Var {
    value: String,
    origin: String,
}

type Vars = BTreeMap<String, Var>;

fn infra(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra").join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every non-empty YAML document of every `.yaml`/`.yml` file under `dir`, with its file.
fn yaml_documents(dir: &Path) -> Vec<(PathBuf, Value)> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut documents = Vec::new();
    for file in files {
        let text = read(&file);
        for document in serde_norway::Deserializer::from_str(&text) {
            let mut value =
                Value::deserialize(document).unwrap_or_else(|e| panic!("{}: not YAML: {e}", file.display()));
            value.apply_merge().unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if !value.is_null() {
                documents.push((file.clone(), value));
            }
        }
    }
    documents
}

/// A YAML scalar as the process environment would see it.
fn scalar(value: &Value, origin: &str) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("{origin}: expected a plain value, found {other:?}"),
    }
}

/// The `ENV` of every stage of the image (the backend's defaults under compose and k8s).
fn dockerfile_vars() -> Vars {
    let text = read(&infra("compose/Dockerfile")).replace("\\\n", " ");
    let mut vars = Vars::new();
    for line in text.lines() {
        let Some(pairs) = line.trim().strip_prefix("ENV ") else { continue };
        for pair in pairs.split_whitespace() {
            let (name, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("infra/compose/Dockerfile: ENV {pair:?} is not NAME=VALUE"));
            let origin = format!("infra/compose/Dockerfile: ENV {name}");
            vars.insert(name.to_owned(), Var { value: value.to_owned(), origin });
        }
    }
    vars
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit_once(':').and_then(|(_, port)| port.parse().ok()).unwrap_or_else(|| panic!("no port in {addr:?}"))
}
// ---- shardrop check-config ------------------------------------------------------------

/// `vars` with each `*_FILE` pointed at a file in `dir` that holds a made-up secret; also
/// returns the secret words, which check-config must never print.
fn with_secret_files(vars: &Vars, dir: &Path) -> (BTreeMap<String, String>, Vec<String>) {
    let mut env = BTreeMap::new();
    let mut secrets = Vec::new();
    for (name, var) in vars {
        let mut value = var.value.clone();
        if name.ends_with("_FILE") {
            let word = format!("secret-of-{}", name.to_ascii_lowercase());
            let content = if name.contains("DATABASE") {
                format!("postgres://shardrop:{word}@db:5432/shardrop\n")
            } else {
                format!("{word}\n")
            };
            let path = dir.join(name);
            std::fs::write(&path, content).unwrap();
            value = path.display().to_string();
            secrets.push(word);
        }
        env.insert(name.clone(), value);
    }
    (env, secrets)
}

/// `shardrop check-config` with exactly `env` (and PATH).
fn check_config(env: &BTreeMap<String, String>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shardrop"))
        .arg("check-config")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env)
        .output()
        .unwrap()
}

/// Asserts that the backend accepts `vars` and returns the settings they resolve to. On a
/// refusal, each variable is tried alone to name the file and the line at fault.
fn assert_accepted(vars: &Vars, what: &str) -> serde_json::Value {
    assert!(!vars.is_empty(), "{what}: found no SHARDROP variables for the backend");
    for (name, var) in vars {
        assert!(
            name.starts_with("SHARDROP__") || PLAIN_VARS.contains(&name.as_str()),
            "{}: {name} is never read by shardrop (it reads {PLAIN_VARS:?} and SHARDROP__SECTION__KEY)",
            var.origin
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let (env, secrets) = with_secret_files(vars, dir.path());
    let out = check_config(&env);
    if !out.status.success() {
        let culprits: Vec<String> = vars
            .iter()
            .filter_map(|(name, var)| {
                let (alone, _) = with_secret_files(&Vars::from([(name.clone(), var.clone())]), dir.path());
                let out = check_config(&alone);
                let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
                (!out.status.success()).then(|| format!("  {} = {:?}: {why}", var.origin, var.value))
            })
            .collect();
        panic!(
            "{what}: `shardrop check-config` refused the backend's environment:\n  {}\n{}",
            String::from_utf8_lossy(&out.stderr).trim(),
            if culprits.is_empty() { "(no variable is wrong alone)".to_owned() } else { culprits.join("\n") }
        );
    }
    let stdout = String::from_utf8(out.stdout).unwrap();
    for secret in secrets {
        assert!(!stdout.contains(&secret), "{what}: check-config printed the secret {secret:?}:\n{stdout}");
    }
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("check-config printed no JSON ({e}):\n{stdout}"))
}

/// What every multi-replica deployment needs, whatever runs it.
fn assert_multi_replica_settings(resolved: &serde_json::Value, what: &str) {
    assert_eq!(resolved["tracker"]["kind"], "redis", "{what}: several replicas need tracker.kind=redis");
    assert_eq!(resolved["storage"]["kind"], "s3", "{what}: several replicas need one S3 store, not local files");
    assert_eq!(resolved["storage"]["s3"]["secret_access_key"], "<redacted>", "{what}: no S3 secret key file");
    let db = resolved["database"]["url"].as_str().unwrap_or_default();
    assert!(db.starts_with("postgres"), "{what}: several replicas need PostgreSQL, database.url is {db:?}");
    let listen = resolved["listen"].as_str().unwrap();
    assert!(listen.starts_with("0.0.0.0:") || listen.starts_with("[::]:"), "{what}: listens on {listen} only");
}

#[test]
fn every_yaml_file_parses() {
    for dir in ["compose", "k8s"] {
        let documents = yaml_documents(&infra(dir));
        assert!(!documents.is_empty(), "no YAML under infra/{dir}");
        for (file, doc) in &documents {
            assert!(doc.is_mapping(), "{}: a document that is not a mapping", file.display());
        }
    }
}
