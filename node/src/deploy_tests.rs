//! The shipped deployment files (deploy/) checked against this very binary: the manifests
//! parse, their parts name each other consistently (Service, StatefulSet, ConfigMap, Secret,
//! ports), and the command lines and node configurations they carry are accepted by the node's
//! own argument and configuration parser. Why here: a manifest that drifts from the binary
//! (a renamed flag, a config field the node refuses) fails this test rather than a rollout.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use serde_yaml::Value;

use crate::runtime::config::{Host, NodeConfig};
use crate::{Cli, Command};

const MANIFEST: &str = include_str!("../../deploy/kubernetes/slotguard.yaml");
const UNIT: &str = include_str!("../../deploy/systemd/slotguard.service");
const SYSTEMD_NODE_TOML: &str = include_str!("../../deploy/systemd/node.toml");

/// A scratch directory standing in for the root of the node's file system, removed when the
/// guard is dropped.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// Writes `text` at the absolute path `path` under `root`.
fn place(root: &Path, path: &str, text: &str) -> Result<()> {
    let at = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(at.parent().context("a parent")?)?;
    std::fs::write(at, text)?;
    Ok(())
}

/// Parses a `slotguard node ...` command line as the binary would, its absolute paths moved
/// under `root`, and builds the node's configuration from it.
fn node_config(command_line: &str, root: &Path) -> Result<NodeConfig> {
    let words: Vec<String> = command_line
        .split_whitespace()
        .skip_while(|w| !w.ends_with("slotguard"))
        .map(|w| {
            let w = w.trim_matches('"');
            if w.starts_with('/') {
                root.join(w.trim_start_matches('/')).display().to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    let cli = Cli::try_parse_from(&words).map_err(|e| anyhow!("{command_line}: {e}"))?;
    let Command::Node(args) = cli.command else {
        bail!("not a `slotguard node` command: {command_line}");
    };
    NodeConfig::from_args(&args)
}

fn documents() -> Result<Vec<Value>> {
    serde_yaml::Deserializer::from_str(MANIFEST)
        .map(|d| serde::Deserialize::deserialize(d).map_err(anyhow::Error::from))
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Result<&'a Value> {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .with_context(|| format!("no {kind} in the manifest"))
}

fn text(v: &Value) -> Result<&str> {
    v.as_str().with_context(|| format!("not a string: {v:?}"))
}

/// `name -> (port, protocol)` of a list of Kubernetes ports.
fn ports(list: &Value, port_key: &str) -> Vec<(String, u64, String)> {
    list.as_sequence()
        .map(|l| {
            l.iter()
                .map(|p| {
                    let name = p["name"].as_str().unwrap_or_default().to_string();
                    let port = p[port_key].as_u64().unwrap_or_default();
                    let proto = p["protocol"].as_str().unwrap_or("TCP").to_string();
                    (name, port, proto)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_kubernetes_manifest_is_consistent_and_its_node_configuration_accepted() -> Result<()> {
    let docs = documents()?;
    let (secret, config_map) = (of_kind(&docs, "Secret")?, of_kind(&docs, "ConfigMap")?);
    let (service, set) = (of_kind(&docs, "Service")?, of_kind(&docs, "StatefulSet")?);
    assert_eq!(
        service["spec"]["clusterIP"].as_str(),
        Some("None"),
        "headless"
    );
    assert_eq!(
        service["spec"]["publishNotReadyAddresses"].as_bool(),
        Some(true)
    );
    assert_eq!(set["spec"]["serviceName"], service["metadata"]["name"]);
    let labels = &set["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&set["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(&service["spec"]["selector"], labels);
    let pod = &set["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let volumes = &pod["volumes"];
    let volume = |name: &str| -> Result<&Value> {
        volumes
            .as_sequence()
            .and_then(|v| v.iter().find(|v| v["name"].as_str() == Some(name)))
            .with_context(|| format!("no volume {name}"))
    };
    assert_eq!(
        volume("key")?["secret"]["secretName"],
        secret["metadata"]["name"]
    );
    assert_eq!(
        volume("config")?["configMap"]["name"],
        config_map["metadata"]["name"]
    );
    assert_eq!(
        ports(&container["ports"], "containerPort"),
        ports(&service["spec"]["ports"], "port")
    );

    // The container's command line and the ConfigMap's node.toml, as pod 4 would run them.
    let scratch = scratch();
    let root = scratch.path().to_path_buf();
    place(
        &root,
        "/etc/slotguard/node.toml",
        text(&config_map["data"]["node.toml"])?,
    )?;
    let line = text(&container["args"][0])?.replace("${HOSTNAME##*-}", "4");
    let key_path = "/etc/slotguard/key/cluster.key";
    place(&root, key_path, text(&secret["stringData"]["cluster.key"])?)?;
    let refused = node_config(&line, &root).expect_err("the placeholder key is refused");
    assert!(
        refused.to_string().contains("at least 16 bytes"),
        "{refused}"
    );
    place(&root, key_path, "0123456789abcdef0123456789abcdef")?;
    let config = node_config(&line, &root)?;
    assert_eq!(config.id, 4);
    let replicas = set["spec"]["replicas"].as_u64().context("replicas")?;
    assert_eq!(config.nodes.len() as u64, replicas, "one node per pod");
    let service_name = text(&service["metadata"]["name"])?;
    let set_name = text(&set["metadata"]["name"])?;
    let by_port = ports(&container["ports"], "containerPort");
    let port_of = |name: &str| by_port.iter().find(|p| p.0 == name).map(|p| p.1);
    for (i, node) in config.nodes.iter().enumerate() {
        let want = Host::Name(format!("{set_name}-{i}.{service_name}"));
        assert_eq!(node.client.host, want, "pod {i} by its stable DNS name");
        assert_eq!(Some(u64::from(node.client.port)), port_of("client"));
        assert_eq!(Some(u64::from(node.bus.port)), port_of("bus"));
    }
    assert_eq!(config.metrics_port.map(u64::from), port_of("metrics"));
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

#[test]
fn the_systemd_unit_runs_a_command_the_node_accepts() -> Result<()> {
    let exec = UNIT
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .context("ExecStart")?;
    assert!(UNIT.contains("LoadCredential=cluster.key:/etc/slotguard/cluster.key"));
    assert!(UNIT.contains("StateDirectory=slotguard"));
    let scratch = scratch();
    let root = scratch.path().to_path_buf();
    let credentials = "/run/credentials/slotguard.service";
    let line = exec.replace("${CREDENTIALS_DIRECTORY}", credentials);
    place(&root, "/etc/slotguard/node.toml", SYSTEMD_NODE_TOML)?;
    place(
        &root,
        &format!("{credentials}/cluster.key"),
        "0123456789abcdef0123",
    )?;
    let config = node_config(&line, &root)?;
    assert_eq!((config.id, config.nodes.len()), (0, 6));
    assert!(config.data_dir.ends_with("var/lib/slotguard"));
    assert_eq!(config.metrics_port, Some(9121));
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
