//! `docs/configuration.md` documents every config key, and only keys that exist.

use std::collections::BTreeSet;
use std::path::Path;

use mbrl_cli::config;

/// Dotted paths of every leaf value of a JSON object.
fn leaf_paths(value: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value.as_object() {
        Some(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaf_paths(child, &path, out);
            }
        }
        None => {
            out.insert(prefix.to_string());
        }
    }
}

#[test]
fn every_config_key_is_documented_and_every_documented_key_exists() {
    let config = config::load(None, &[]).unwrap();
    let mut keys = BTreeSet::new();
    leaf_paths(&config.to_json(), "", &mut keys);
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let missing: Vec<_> = keys
        .iter()
        .filter(|k| !doc.contains(&format!("| `{k}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md lacks rows for {missing:?}"
    );
    let documented: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(String::from)
        .collect();
    let stale: Vec<_> = documented.difference(&keys).collect();
    assert!(
        stale.is_empty(),
        "docs/configuration.md documents keys that do not exist: {stale:?}"
    );
}
