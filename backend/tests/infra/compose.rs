//! `infra/compose`: the backend service's environment (with compose's `${…}` filled from
//! `.env.example`), its replicas, healthcheck and secrets, and nginx in front of it.

use std::collections::BTreeMap;

use serde_norway::Value;

use crate::{assert_accepted, assert_multi_replica_settings, check_config, dockerfile_vars, infra, port_of, read};
use crate::{scalar, with_secret_files, Var, Vars};

struct Compose {
    doc: Value,
    dotenv: BTreeMap<String, String>,
}

impl Compose {
    fn load() -> Self {
        let mut doc: Value = serde_norway::from_str(&read(&infra("compose/compose.yaml")))
            .unwrap_or_else(|e| panic!("infra/compose/compose.yaml: {e}"));
        doc.apply_merge().unwrap();
        let dotenv = read(&infra("compose/.env.example"))
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
            .map(|line| {
                let (k, v) = line.split_once('=').unwrap_or_else(|| panic!(".env.example: {line:?} is not NAME=VALUE"));
                (k.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        Self { doc, dotenv }
    }

    /// The backend's services: `backend`, or `backend-1`, `backend-2`, … if spelled out.
    fn backends(&self) -> Vec<(String, &Value)> {
        let services = self.doc["services"].as_mapping().expect("compose.yaml: no services");
        let backends: Vec<_> = services
            .iter()
            .map(|(name, service)| (scalar(name, "services"), service))
            .filter(|(name, _)| name.starts_with("backend"))
            .collect();
        assert!(!backends.is_empty(), "infra/compose/compose.yaml: no service named backend*");
        backends
    }

    /// A service's `environment` (map or list form), interpolated.
    fn env(&self, name: &str, service: &Value) -> Vars {
        let origin = format!("infra/compose/compose.yaml: services.{name}.environment");
        let pairs: Vec<(String, String)> = match &service["environment"] {
            Value::Mapping(m) => m.iter().map(|(k, v)| (scalar(k, &origin), scalar(v, &origin))).collect(),
            Value::Sequence(items) => items
                .iter()
                .map(|item| {
                    let item = scalar(item, &origin);
                    let (k, v) = item.split_once('=').unwrap_or_else(|| panic!("{origin}: {item:?} has no value"));
                    (k.to_owned(), v.to_owned())
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut vars = Vars::new();
        for (k, v) in pairs {
            let origin = format!("{origin}.{k}");
            vars.insert(k, Var { value: self.interpolate(&v, &origin), origin });
        }
        vars
    }

    /// Compose's `$$`, `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME-default}` and
    /// `${NAME:?error}`, with the values of `.env.example`, which must define every NAME
    /// that has no default.
    fn interpolate(&self, text: &str, origin: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                out.push('$');
                rest = after;
                continue;
            }
            let (expr, after) = match rest.strip_prefix('{') {
                Some(braced) => {
                    let end = braced.find('}').unwrap_or_else(|| panic!("{origin}: unclosed ${{ in {text:?}"));
                    (&braced[..end], &braced[end + 1..])
                }
                None => {
                    rest.split_at(rest.find(|c: char| !c.is_ascii_alphanumeric() && c != '_').unwrap_or(rest.len()))
                }
            };
            let (name, op) = expr.split_at(expr.find([':', '-', '?']).unwrap_or(expr.len()));
            let set = self.dotenv.get(name).filter(|v| !v.is_empty() || !op.starts_with(':'));
            out.push_str(match (set, op) {
                (Some(value), _) => value.as_str(),
                (None, op) if op.starts_with(":-") => &op[2..],
                (None, op) if op.starts_with('-') => &op[1..],
                (None, _) => panic!("{origin}: ${{{name}}} has no default and .env.example does not set it"),
            });
            rest = after;
        }
        out.push_str(rest);
        out
    }

    /// What every backend replica gets: the image's `ENV`, then the service's environment.
    fn backend_vars(&self) -> Vars {
        let mut vars = dockerfile_vars();
        for (name, service) in self.backends() {
            vars.extend(self.env(&name, service));
        }
        vars.retain(|name, _| name.starts_with("SHARDROP"));
        vars
    }
}

#[test]
fn backend_environment_is_accepted_by_check_config() {
    let compose = Compose::load();
    let what = "infra/compose/compose.yaml";
    let resolved = assert_accepted(&compose.backend_vars(), what);
    assert_multi_replica_settings(&resolved, what);
    let port = port_of(resolved["listen"].as_str().unwrap());
    let top_secrets = compose.doc["secrets"].as_mapping().cloned().unwrap_or_default();
    let mut replicas = 0;
    for (name, service) in compose.backends() {
        replicas += service["deploy"]["replicas"].as_u64().unwrap_or(1);
        let test = service["healthcheck"]["test"]
            .as_sequence()
            .map(|t| t.iter().map(|v| scalar(v, what)).collect::<Vec<String>>());
        let test = test.unwrap_or_else(|| panic!("{what}: services.{name} has no healthcheck test"));
        let url = format!("http://127.0.0.1:{port}/readyz");
        assert!(test.contains(&url), "{what}: services.{name}.healthcheck should GET {url}, is {test:?}");
        let mounted: Vec<String> =
            service["secrets"].as_sequence().into_iter().flatten().map(|s| scalar(s, what)).collect();
        for (var, Var { value, origin }) in compose.env(&name, service) {
            if !var.ends_with("_FILE") {
                continue;
            }
            let secret = value.strip_prefix("/run/secrets/").unwrap_or_else(|| panic!("{origin}: not a secret"));
            assert!(mounted.iter().any(|m| m == secret), "{origin}: services.{name} does not mount secret {secret}");
            assert!(top_secrets.contains_key(secret), "{origin}: no top-level secret {secret}");
        }
    }
    assert!(replicas >= 3, "{what}: {replicas} backend replicas, want at least 3");
}

#[test]
fn a_misspelled_or_wrong_variable_fails_check_config() {
    let vars = Compose::load().backend_vars();
    let dir = tempfile::tempdir().unwrap();
    let (env, _) = with_secret_files(&vars, dir.path());
    assert!(check_config(&env).status.success(), "the compose environment itself is refused");
    let missing = dir.path().join("missing").display().to_string();
    for (name, value, named) in [
        ("SHARDROP__STORAGE__S3__BUCKIT", "uploads", "buckit"),
        ("SHARDROP__TRACKER__KIND", "redsi", "redsi"),
        ("SHARDROP__STORAGE__S3__SECRET_ACCESS_KEY_FILE", missing.as_str(), "missing"),
    ] {
        let mut env = env.clone();
        env.insert(name.into(), value.into());
        let out = check_config(&env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}={value}: check-config should exit 1; stderr: {stderr}");
        assert!(stderr.contains(named), "{name}={value}: the error should name {named:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{name}={value}: printed settings anyway");
    }
}

/// The `upstream NAME { … }` blocks of an nginx config, without comments.
fn nginx_upstreams(conf: &str) -> BTreeMap<String, String> {
    let mut upstreams = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in conf.lines().map(|l| l.split('#').next().unwrap_or_default().trim()) {
        match (&mut current, line.strip_prefix("upstream ")) {
            (Some(_), _) if line.starts_with('}') => upstreams.extend(current.take()),
            (Some((_, body)), _) => body.push_str(&format!("{line}\n")),
            (None, Some(name)) => current = Some((name.trim_end_matches('{').trim().to_owned(), String::new())),
            (None, None) => {}
        }
    }
    upstreams
}

#[test]
fn nginx_round_robins_the_backends_and_fronts_s3() {
    let compose = Compose::load();
    let what = "infra/compose/nginx.conf";
    let conf = read(&infra("compose/nginx.conf"));
    let resolved = assert_accepted(&compose.backend_vars(), "infra/compose/compose.yaml");
    let port = port_of(resolved["listen"].as_str().unwrap());
    let upstreams = nginx_upstreams(&conf);
    for (service, _) in compose.backends() {
        let server = format!("server {service}:{port}");
        let (name, body) = upstreams
            .iter()
            .find(|(_, body)| body.contains(&server))
            .unwrap_or_else(|| panic!("{what}: no upstream has `{server}`; upstreams: {upstreams:?}"));
        assert!(conf.contains(&format!("proxy_pass http://{name};")), "{what}: nothing proxy_passes to {name}");
        for sticky in ["ip_hash", "hash ", "sticky"] {
            assert!(!body.contains(sticky), "{what}: upstream {name} uses {sticky}: replicas are stateless");
        }
    }
    assert!(conf.contains("client_max_body_size"), "{what}: say how large an API body may be");
    // The S3 endpoint the backends sign for is nginx, by alias, on a port it listens on.
    let endpoint = resolved["storage"]["s3"]["endpoint"].as_str().unwrap();
    let host = endpoint.split("://").nth(1).and_then(|h| h.split(':').next()).unwrap();
    let s3_port = port_of(endpoint);
    let nginx = &compose.doc["services"]["nginx"];
    let aliases: Vec<String> = nginx["networks"]["default"]["aliases"]
        .as_sequence()
        .map(|a| a.iter().map(|v| compose.interpolate(&scalar(v, what), "nginx aliases")).collect())
        .unwrap_or_default();
    assert!(aliases.contains(&host.to_owned()), "compose.yaml: nginx needs the alias {host} ({endpoint})");
    assert!(conf.contains(&format!("listen {s3_port};")), "{what}: nothing listens on {s3_port} ({endpoint})");
    let published = format!("{s3_port}:{s3_port}");
    let ports: Vec<String> = nginx["ports"].as_sequence().into_iter().flatten().map(|p| scalar(p, what)).collect();
    assert!(ports.contains(&published), "compose.yaml: nginx must publish {published} ({endpoint}), has {ports:?}");
}
