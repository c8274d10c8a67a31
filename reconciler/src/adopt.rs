//! A state store that lost olo's earlier work, found before olo starts on it, and the way back
//! from olo's own files.
//!
//! olo records a commit's revision before it plans it, and claims each file in its inventory
//! before writing it (`apply.rs`): files olo rendered beside an empty store mean the store was
//! lost or replaced (an emptied or deleted SQLite file, an empty PostgreSQL database), never a
//! fresh install. Starting anyway would go on without a word: the history gone, and every file
//! olo created and no longer knows it owns left in place for good once it leaves the repository.
//! [`check`] refuses that, unless asked to adopt: then each of these files goes back into the
//! inventory with the content hash and revision its header names, and is pruned like any other
//! once it leaves the repository.
//!
//! olo's files are those in the folders olo renders into ([`FOLDERS`]) that start with olo's
//! header (`olo_templates::render::header`): the DAG files (`dags/*.py`, the top of the DAG
//! folder, where olo writes them; its sub-folders are not looked into) and the Trino catalogs
//! (`trino/catalog/*.properties`). A file without that header is never adopted, and does not
//! stop a start: files olo writes without one (`trino/rules.json`, `iceberg/namespaces.json`,
//! `dags/.airflowignore`, the task files under `dags/olo_assets/`) are rendered again by the
//! first reconcile, which claims them anew (files of jobs removed meanwhile stay).
//!
//! With a lakehouse catalog, olo's namespaces are adopted too ([`lake_namespaces`]): those the
//! last rendered `iceberg/namespaces.json` names, and their workspace parents, that the catalog
//! holds with olo's ownership marker (`olo.managed-by = olo`). So a namespace whose workspace
//! left the repository meanwhile is dropped as it would have been. Tables (olo never drops one)
//! and warehouse folders are claimed again by the first apply that touches them.

use crate::apply::SharedSink;
use crate::lakehouse::{
    namespace_hash, IcebergCatalog, NamespaceId, OWNERSHIP_PROPERTY, TARGET as LAKEHOUSE,
};
use crate::store::{InventoryItem, NewAudit, Store};
use crate::{Error, Result};

/// Where olo's headed files live in a sink: a rendered folder and the file names' ending.
pub const FOLDERS: &[(&str, &str)] = &[("dags", ".py"), ("trino/catalog", ".properties")];

/// The audit action of an adoption.
pub const ADOPTED: &str = "adopt";

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The store holds olo's earlier work: nothing to do.
    Known,
    /// An empty store and none of olo's files: a fresh install.
    Fresh,
    /// An empty store, and olo's files (and lakehouse namespaces) were adopted into the
    /// inventory.
    Adopted { files: usize, namespaces: usize },
}

/// The namespaces of the lakehouse that are olo's, as the inventory items olo would have
/// recorded for them: each namespace the sink's last `iceberg/namespaces.json` names, and its
/// workspace parent, that `catalog` holds with `olo.managed-by = olo` (in name order). A
/// namespace without the marker is never adopted.
pub async fn lake_namespaces(
    sink: &SharedSink,
    catalog: &dyn IcebergCatalog,
) -> Result<Vec<InventoryItem>> {
    const RENDERED: &str = "iceberg/namespaces.json";
    let file = sink
        .blocking(|sink| sink.observe(&mut std::iter::once(RENDERED)))
        .await?;
    let Some(bytes) = file.get(RENDERED) else {
        return Ok(Vec::new());
    };
    let listed: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    let mut ids = std::collections::BTreeSet::new();
    for ns in listed["namespaces"].as_array().into_iter().flatten() {
        let (Some(catalog), Some(parts)) = (ns["catalog"].as_str(), ns["namespace"].as_array())
        else {
            continue;
        };
        let parts: Vec<String> = parts
            .iter()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect();
        for depth in 1..=parts.len() {
            ids.insert(NamespaceId {
                catalog: catalog.to_string(),
                parts: parts[..depth].to_vec(),
            });
        }
    }
    let mut items = Vec::new();
    for id in ids {
        let Some(properties) = catalog.load_namespace(&id).await? else {
            continue;
        };
        if properties.get(OWNERSHIP_PROPERTY).map(String::as_str) != Some("olo") {
            continue;
        }
        items.push(InventoryItem {
            target: LAKEHOUSE.to_string(),
            name: id.resource(),
            hash: namespace_hash(&properties),
            revision: ADOPTED.to_string(),
        });
    }
    Ok(items)
}

/// The files of the sink that start with olo's header, as the inventory items olo would have
/// recorded for them (the header's content hash and revision), in name order.
pub async fn rendered_files(sink: &SharedSink) -> Result<Vec<InventoryItem>> {
    let target = sink.target().to_string();
    sink.blocking(move |sink| {
        let mut names = Vec::new();
        for (folder, ending) in FOLDERS {
            names.extend(
                sink.list(folder)?
                    .into_iter()
                    .filter(|name| name.ends_with(ending)),
            );
        }
        let files = sink.observe(&mut names.iter().map(String::as_str))?;
        Ok(files
            .iter()
            .filter_map(|(name, bytes)| {
                let header = olo_templates::render::read_header(bytes)?;
                Some(InventoryItem {
                    target: target.clone(),
                    name: name.clone(),
                    hash: header.content_sha256.to_string(),
                    revision: header.revision.to_string(),
                })
            })
            .collect())
    })
    .await
}

/// Checks, before olo starts on `store` (named `store_name` in messages), that the store did
/// not lose what olo did in the sink: an empty store beside files olo rendered is an error that
/// names the ways forward ([`Error::StoreLost`]), unless `adopt`: then those files are recorded
/// in the inventory (and the adoption in the audit log).
pub async fn check(
    store: &dyn Store,
    sink: &SharedSink,
    lake: Option<&dyn IcebergCatalog>,
    store_name: &str,
    adopt: bool,
) -> Result<Start> {
    if !store.is_empty().await? {
        if adopt {
            tracing::info!(
                "--adopt: the state store holds olo's earlier work; nothing to adopt, it starts \
                 as it is"
            );
        }
        return Ok(Start::Known);
    }
    let files = rendered_files(sink).await?;
    let Some(first) = files.first() else {
        return Ok(Start::Fresh);
    };
    if !adopt {
        return Err(Error::StoreLost {
            store: store_name.to_string(),
            files: files.len(),
            example: sink.locate(&first.name).await?,
            revision: crate::engine::short(&first.revision).to_string(),
        });
    }
    let namespaces = match lake {
        Some(catalog) => lake_namespaces(sink, catalog).await?,
        None => Vec::new(),
    };
    store.upsert_inventory_many(&files).await?;
    store.upsert_inventory_many(&namespaces).await?;
    store
        .append_audit(&NewAudit {
            actor: "olo".into(),
            action: ADOPTED.into(),
            target: sink.target().to_string(),
            revision: None,
            details: serde_json::json!({ "files": files.len(), "namespaces": namespaces.len() }),
        })
        .await?;
    tracing::info!(
        files = files.len(),
        namespaces = namespaces.len(),
        target = sink.target(),
        "--adopt: the state store was empty; {} olo rendered taken back into the inventory from \
         their headers, and {} of the lakehouse that carry olo's marker",
        crate::text::count(files.len(), "file"),
        crate::text::count(namespaces.len(), "namespace")
    );
    Ok(Start::Adopted {
        files: files.len(),
        namespaces: namespaces.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{FolderSink, Layout};
    use crate::store::SqliteStore;
    use std::sync::Arc;

    fn dag(revision: &str, body: &str) -> String {
        olo_templates::render::header("#", "workspaces/w/jobs/j.yaml", revision, body) + body
    }

    async fn setup() -> (tempfile::TempDir, SharedSink, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let sink = SharedSink::new(Box::new(FolderSink::new(Layout::under(dir.path()))));
        let url = format!("sqlite:{}", dir.path().join("state.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        (dir, sink, store)
    }

    fn write(dir: &std::path::Path, name: &str, text: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[tokio::test]
    async fn only_files_with_olos_header_in_olos_folders_are_olos() {
        let (dir, sink, _store) = setup().await;
        let d = dir.path();
        write(d, "dags/w__one.py", &dag("c1", "one\n"));
        write(d, "dags/w__two.py", &dag("c2", "two\n"));
        write(d, "trino/catalog/lake.properties", &dag("c1", "lake\n"));
        // Not olo's, or not where olo writes its headed files.
        write(d, "dags/foreign.py", "# someone's DAG\n");
        write(d, "dags/notes.txt", &dag("c1", "a text file\n"));
        write(d, "dags/.hidden.py", &dag("c1", "hidden\n"));
        write(d, "dags/sub/w__deep.py", &dag("c1", "deep\n"));
        write(d, "dags/olo_assets/w/app.py", &dag("c1", "asset\n"));
        write(d, "trino/rules.json", "{}\n");
        let files = rendered_files(&sink).await.unwrap();
        let seen: Vec<(&str, &str, &str)> = files
            .iter()
            .map(|i| (i.target.as_str(), i.name.as_str(), i.revision.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("files", "dags/w__one.py", "c1"),
                ("files", "dags/w__two.py", "c2"),
                ("files", "trino/catalog/lake.properties", "c1"),
            ]
        );
        assert_eq!(
            files[0].hash,
            crate::plan::content_hash(dag("c1", "one\n").as_bytes())
        );
    }

    #[tokio::test]
    async fn an_empty_store_beside_olos_files_is_refused_unless_adopted() {
        let (dir, sink, store) = setup().await;
        // A fresh install: no files, or none of olo's.
        assert_eq!(
            check(&store, &sink, None, "s", false).await.unwrap(),
            Start::Fresh
        );
        write(dir.path(), "dags/foreign.py", "# someone's DAG\n");
        assert_eq!(
            check(&store, &sink, None, "s", false).await.unwrap(),
            Start::Fresh
        );
        assert!(store.is_empty().await.unwrap());

        write(
            dir.path(),
            "dags/w__one.py",
            &dag("0123456789abcdef", "one\n"),
        );
        let refused = check(&store, &sink, None, "sqlite:state.db", false).await;
        let Err(e @ Error::StoreLost { files: 1, .. }) = refused else {
            panic!("{refused:?}");
        };
        let text = e.to_string();
        assert!(
            text.contains("w__one.py") && text.contains("0123456789ab"),
            "{text}"
        );
        assert!(store.is_empty().await.unwrap(), "a refusal changes nothing");

        assert_eq!(
            check(&store, &sink, None, "s", true).await.unwrap(),
            Start::Adopted {
                files: 1,
                namespaces: 0
            }
        );
        let inventory = store.inventory("files").await.unwrap();
        assert_eq!(inventory.len(), 1);
        assert_eq!(inventory[0].name, "dags/w__one.py");
        assert_eq!(inventory[0].revision, "0123456789abcdef");
        assert_eq!(
            store.last_audit(ADOPTED).await.unwrap().unwrap().target,
            "files"
        );
        // Once the store holds something, olo starts on it as it is.
        assert_eq!(
            check(&store, &sink, None, "s", false).await.unwrap(),
            Start::Known
        );
    }

    #[tokio::test]
    async fn olos_namespaces_in_the_catalog_are_adopted_and_no_others() {
        use crate::lakehouse::sql::SqlCatalog;
        use std::collections::BTreeMap;
        let (dir, sink, store) = setup().await;
        let cat = SqlCatalog::open(
            &format!("sqlite://{}/cat.db?mode=rwc", dir.path().display()),
            Arc::new(crate::lakehouse::warehouse::Warehouses::new(None).unwrap()),
        )
        .await
        .unwrap();
        let olos: BTreeMap<String, String> = [
            ("olo.managed-by".to_string(), "olo".to_string()),
            ("owner".to_string(), "data-eng".to_string()),
        ]
        .into();
        let id = |parts: &[&str]| NamespaceId::new("lake", parts);
        for parts in [&["w"][..], &["w", "raw"], &["w", "gold"]] {
            cat.create_namespace(&id(parts), &olos).await.unwrap();
        }
        // Listed but not marked as olo's; marked but not listed; listed but absent.
        cat.create_namespace(&id(&["x"]), &BTreeMap::new())
            .await
            .unwrap();
        cat.create_namespace(&id(&["x", "raw"]), &BTreeMap::new())
            .await
            .unwrap();
        cat.create_namespace(&id(&["other"]), &olos).await.unwrap();
        write(dir.path(), "dags/w__one.py", &dag("c1", "one\n"));
        let listed = |ws: &str, ns: &str| serde_json::json!({"catalog": "lake", "workspace": ws, "namespace": [ws, ns], "properties": {}});
        write(
            dir.path(),
            "iceberg/namespaces.json",
            &serde_json::json!({"generated_by": "olo", "namespaces": [
                listed("w", "raw"), listed("w", "gold"), listed("x", "raw"), listed("y", "raw")
            ]})
            .to_string(),
        );
        assert_eq!(
            check(&store, &sink, Some(&cat), "s", true).await.unwrap(),
            Start::Adopted {
                files: 1,
                namespaces: 3
            }
        );
        let lake = store.inventory(LAKEHOUSE).await.unwrap();
        let names: Vec<&str> = lake.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "namespace/lake/w",
                "namespace/lake/w.gold",
                "namespace/lake/w.raw"
            ]
        );
        assert_eq!(lake[0].hash, namespace_hash(&olos));
        let audit = store.last_audit(ADOPTED).await.unwrap().unwrap();
        assert_eq!(audit.details["namespaces"], 3);
    }
}
