//! `infra/k8s`: the Deployment's environment (its ConfigMap and `env`), the Secret files
//! it mounts, and the ports and probes of the Deployment, Service and Ingress.

use std::path::PathBuf;

use serde_norway::Value;

use crate::{assert_accepted, assert_multi_replica_settings, dockerfile_vars, infra, port_of, scalar, yaml_documents};
use crate::{Var, Vars};

struct K8s {
    documents: Vec<(PathBuf, Value)>,
}

impl K8s {
    fn load() -> Self {
        Self { documents: yaml_documents(&infra("k8s")) }
    }

    fn all(&self, kind: &str) -> Vec<&Value> {
        self.documents.iter().filter(|(_, d)| d["kind"] == kind).map(|(_, d)| d).collect()
    }

    fn one(&self, kind: &str) -> &Value {
        match self.all(kind).as_slice() {
            [one] => one,
            all => panic!("infra/k8s: want exactly one {kind}, found {}", all.len()),
        }
    }

    fn named(&self, kind: &str, name: &str) -> &Value {
        let found = self.all(kind).into_iter().find(|d| d["metadata"]["name"] == name);
        found.unwrap_or_else(|| panic!("infra/k8s: no {kind} named {name}"))
    }

    fn container(&self) -> &Value {
        match self.one("Deployment")["spec"]["template"]["spec"]["containers"].as_sequence().map(Vec::as_slice) {
            Some([one]) => one,
            _ => panic!("infra/k8s: the Deployment should have exactly one container"),
        }
    }

    /// The image's `ENV`, then the ConfigMaps the container takes with `envFrom`, then its `env`.
    fn backend_vars(&self) -> Vars {
        let mut vars = dockerfile_vars();
        for from in self.container()["envFrom"].as_sequence().into_iter().flatten() {
            let Some(name) = from["configMapRef"]["name"].as_str() else { continue };
            let data = self.named("ConfigMap", name)["data"].as_mapping().cloned().unwrap_or_default();
            for (key, value) in data {
                let key = scalar(&key, name);
                let origin = format!("infra/k8s: ConfigMap {name}: data.{key}");
                let value = value.as_str().unwrap_or_else(|| panic!("{origin}: must be a string (quote it)"));
                vars.insert(key, Var { value: value.to_owned(), origin });
            }
        }
        for entry in self.container()["env"].as_sequence().into_iter().flatten() {
            let name = entry["name"].as_str().expect("env entry without name").to_owned();
            let origin = format!("infra/k8s: Deployment env {name}");
            let value = entry["value"].as_str().unwrap_or_else(|| panic!("{origin}: want a string value"));
            vars.insert(name, Var { value: value.to_owned(), origin });
        }
        vars.retain(|name, _| name.starts_with("SHARDROP"));
        vars
    }

    /// A port given by number or by the container port's name.
    fn container_port(&self, port: &Value) -> u64 {
        if let Some(number) = port.as_u64() {
            return number;
        }
        let name = port.as_str().unwrap_or_else(|| panic!("infra/k8s: port {port:?}"));
        let ports = self.container()["ports"].as_sequence().expect("the container has no ports");
        let found = ports.iter().find(|p| p["name"] == name);
        found.and_then(|p| p["containerPort"].as_u64()).unwrap_or_else(|| panic!("infra/k8s: no container port {name}"))
    }
}

#[test]
fn backend_environment_is_accepted_and_its_secrets_mounted() {
    let k8s = K8s::load();
    let resolved = assert_accepted(&k8s.backend_vars(), "infra/k8s");
    assert_multi_replica_settings(&resolved, "infra/k8s");
    // Every *_FILE is a key of the Secret mounted at its folder.
    let container = k8s.container();
    let volumes =
        k8s.one("Deployment")["spec"]["template"]["spec"]["volumes"].as_sequence().cloned().unwrap_or_default();
    for (name, Var { value, origin }) in k8s.backend_vars().into_iter().filter(|(n, _)| n.ends_with("_FILE")) {
        let (folder, key) = value.rsplit_once('/').unwrap_or_else(|| panic!("{origin}: {value:?} is not a path"));
        let mount = container["volumeMounts"].as_sequence().and_then(|m| m.iter().find(|m| m["mountPath"] == folder));
        let mount = mount.unwrap_or_else(|| panic!("{origin}: nothing is mounted at {folder} for {name}"));
        let volume = volumes.iter().find(|v| v["name"] == mount["name"]).expect("a mount without its volume");
        let secret =
            volume["secret"]["secretName"].as_str().unwrap_or_else(|| panic!("{origin}: {folder} is no Secret"));
        let example = k8s.named("Secret", secret);
        assert!(example["stringData"].get(key).is_some(), "{origin}: Secret {secret} has no key {key}");
    }
}

#[test]
fn ports_probes_service_and_ingress_agree() {
    let k8s = K8s::load();
    let resolved = assert_accepted(&k8s.backend_vars(), "infra/k8s");
    let listen = port_of(resolved["listen"].as_str().unwrap());
    let deployment = k8s.one("Deployment");
    let container = k8s.container();
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(3), "infra/k8s: the Deployment should run 3 replicas");
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "infra/k8s: the Deployment's {probe} should GET {path}");
        assert_eq!(k8s.container_port(&get["port"]), listen, "infra/k8s: {probe} is not on the listen port");
    }
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true), "infra/k8s: want a read-only root fs");
    let pod = &deployment["spec"]["template"];
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"].as_bool(), Some(true), "infra/k8s: want non-root");

    let service = k8s.one("Service");
    let labels = pod["metadata"]["labels"].as_mapping().expect("the pod template has no labels");
    for (key, value) in service["spec"]["selector"].as_mapping().expect("the Service has no selector") {
        assert_eq!(labels.get(key), Some(value), "infra/k8s: the Service's selector {key:?} misses the pods");
    }
    let service_ports = service["spec"]["ports"].as_sequence().expect("the Service has no ports");
    for port in service_ports {
        assert_eq!(k8s.container_port(&port["targetPort"]), listen, "infra/k8s: Service targetPort != listen port");
    }
    let ingress = k8s.one("Ingress");
    let annotations = ingress["metadata"]["annotations"].as_mapping().cloned().unwrap_or_default();
    assert!(
        annotations.contains_key("nginx.ingress.kubernetes.io/proxy-body-size"),
        "infra/k8s: the Ingress should set nginx's body size"
    );
    for rule in ingress["spec"]["rules"].as_sequence().into_iter().flatten() {
        for path in rule["http"]["paths"].as_sequence().into_iter().flatten() {
            let backend = &path["backend"]["service"];
            assert_eq!(backend["name"], service["metadata"]["name"], "infra/k8s: the Ingress points elsewhere");
            let port = &backend["port"];
            let known = service_ports.iter().any(|p| {
                (port["name"].is_string() && p["name"] == port["name"])
                    || (port["number"].is_number() && p["port"] == port["number"])
            });
            assert!(known, "infra/k8s: the Ingress uses port {port:?}, which the Service does not have");
        }
    }
    let kustomization = k8s.one("Kustomization");
    for resource in kustomization["resources"].as_sequence().into_iter().flatten() {
        let file = infra("k8s").join(resource.as_str().unwrap());
        assert!(file.is_file(), "infra/k8s/kustomization.yaml lists {}, which is missing", file.display());
    }
}
