//! The lakehouse apply when the catalog fails half-way: nothing olo created is lost from its
//! inventory, and the next reconcile finishes the job without doing anything twice. The catalog
//! is an in-memory one that stops answering after N creates; the state store is a real SQLite
//! store. (tests/lakehouse.rs drives the same code against real catalogs.) And the SQL catalog's
//! batched namespace creates, on SQLite and on a real PostgreSQL (`OLO_TEST_POSTGRES_URL`, which
//! scripts/test.sh sets; without it that test fails, it does not skip).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use olo_reconciler::lakehouse::apply::Lakehouse;
use olo_reconciler::lakehouse::tables::TableId;
use olo_reconciler::lakehouse::{
    Desired, DesiredNamespace, IcebergCatalog, LakeError, LakeResult, Locations, NamespaceId,
    TARGET,
};
use olo_reconciler::plan::{Action, Diffs, Observe, PlanOptions};
use olo_reconciler::store::{SqliteStore, Store};
use serde_json::Value;

/// A full reconcile's options: pruning, reading everything back, diffs of updates only.
const RECONCILE: PlanOptions = PlanOptions {
    prune: true,
    diffs: Diffs::Updates,
    observe: Observe::Full,
};

/// Namespaces in memory; `creates_left` creates succeed, then the catalog "dies".
#[derive(Default)]
struct FlakyCatalog {
    namespaces: Mutex<BTreeMap<NamespaceId, BTreeMap<String, String>>>,
    creates_left: AtomicUsize,
    creates: AtomicUsize,
}

#[async_trait::async_trait]
impl IcebergCatalog for FlakyCatalog {
    fn describe(&self) -> String {
        "the flaky test catalog".into()
    }
    async fn load_namespace(
        &self,
        id: &NamespaceId,
    ) -> LakeResult<Option<BTreeMap<String, String>>> {
        Ok(self.namespaces.lock().unwrap().get(id).cloned())
    }
    async fn count_tables(&self, _: &NamespaceId) -> LakeResult<usize> {
        Ok(0)
    }
    async fn children(&self, _: &NamespaceId) -> LakeResult<Vec<NamespaceId>> {
        Ok(Vec::new())
    }
    async fn create_namespace(
        &self,
        id: &NamespaceId,
        properties: &BTreeMap<String, String>,
    ) -> LakeResult<()> {
        if self
            .creates_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            return Err(LakeError::Unavailable {
                system: self.describe(),
                message: "connection reset".into(),
            });
        }
        self.creates.fetch_add(1, Ordering::SeqCst);
        let mut all = self.namespaces.lock().unwrap();
        assert!(!all.contains_key(id), "{id} created twice");
        all.insert(id.clone(), properties.clone());
        Ok(())
    }
    async fn update_properties(
        &self,
        id: &NamespaceId,
        removals: &[String],
        updates: &BTreeMap<String, String>,
    ) -> LakeResult<()> {
        let mut all = self.namespaces.lock().unwrap();
        let props = all.get_mut(id).expect("updates go to existing namespaces");
        for k in removals {
            props.remove(k);
        }
        props.extend(updates.clone());
        Ok(())
    }
    async fn drop_namespace(&self, id: &NamespaceId) -> LakeResult<()> {
        self.namespaces.lock().unwrap().remove(id);
        Ok(())
    }
    async fn load_table(&self, _: &TableId) -> LakeResult<Option<Value>> {
        Ok(None)
    }
    async fn create_table(&self, _: &TableId, _: &Value) -> LakeResult<()> {
        unreachable!("no tables here")
    }
    async fn commit_table(&self, _: &TableId, _: &[Value], _: &[Value]) -> LakeResult<()> {
        unreachable!("no tables here")
    }
}

fn desired() -> Desired {
    let ns = |parts: &[&str]| DesiredNamespace {
        id: NamespaceId::new("lake", parts),
        workspace: "sales".into(),
        properties: [
            ("olo.managed-by".to_string(), "olo".to_string()),
            (
                "olo.properties".to_string(),
                "olo.managed-by,owner".to_string(),
            ),
            ("owner".to_string(), "sales-eng".to_string()),
        ]
        .into(),
    };
    Desired {
        warehouses: vec![],
        namespaces: vec![
            ns(&["sales"]),
            ns(&["sales", "bronze"]),
            ns(&["sales", "gold"]),
            ns(&["sales", "silver"]),
        ],
        tables: vec![],
        trino_catalogs: vec![],
    }
}

#[tokio::test]
async fn a_catalog_that_dies_half_way_loses_nothing_and_nothing_is_done_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&format!("sqlite:{}/state.db", dir.path().display()))
        .await
        .unwrap();
    let catalog = Arc::new(FlakyCatalog::default());
    catalog.creates_left.store(2, Ordering::SeqCst);
    let lake = Lakehouse {
        catalog: Some(catalog.clone()),
        warehouse: None,
        locations: Locations::default(),
        trino: None,
    };
    let want = desired();

    // First reconcile: four creates planned, the catalog dies after two.
    let owned = store.inventory(TARGET).await.unwrap();
    let plan = lake.plan(&want, &owned, &RECONCILE).await.unwrap();
    assert_eq!(plan.ops.len(), 4);
    let err = lake
        .apply_writes(&plan, &want, &store, "r1")
        .await
        .unwrap_err();
    assert_eq!(
        err.class(),
        olo_reconciler::controller::ErrorClass::Temporary,
        "{err}"
    );
    assert!(err.to_string().contains("flaky test catalog"), "{err}");
    assert_eq!(catalog.namespaces.lock().unwrap().len(), 2);
    // Ownership was claimed before acting: olo knows every namespace it may have created.
    let owned = store.inventory(TARGET).await.unwrap();
    assert_eq!(owned.len(), 4);

    // The catalog is back: the next reconcile creates the two missing ones, and only those.
    catalog.creates_left.store(usize::MAX, Ordering::SeqCst);
    let plan = lake.plan(&want, &owned, &RECONCILE).await.unwrap();
    let creates: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Create)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        creates,
        vec!["namespace/lake/sales.gold", "namespace/lake/sales.silver"]
    );
    assert_eq!(plan.unchanged, 2);
    lake.apply_writes(&plan, &want, &store, "r2").await.unwrap();
    lake.apply_drops(&plan, &want, &owned, &store)
        .await
        .unwrap();
    assert_eq!(
        catalog.creates.load(Ordering::SeqCst),
        4,
        "no namespace created twice"
    );
    assert_eq!(catalog.namespaces.lock().unwrap().len(), 4);

    // Converged: nothing to do.
    let owned = store.inventory(TARGET).await.unwrap();
    let plan = lake.plan(&want, &owned, &RECONCILE).await.unwrap();
    assert!(plan.changes.is_empty() && plan.ops.is_empty(), "{plan:?}");

    // The workspace leaves the repository (pruning on): children dropped, then the parent.
    let plan = lake
        .plan(&Desired::default(), &owned, &RECONCILE)
        .await
        .unwrap();
    let drops: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(drops.len(), 4, "{plan:?}");
    assert_eq!(
        drops.last(),
        Some(&"namespace/lake/sales"),
        "the parent goes last"
    );
    lake.apply_drops(&plan, &Desired::default(), &owned, &store)
        .await
        .unwrap();
    assert!(catalog.namespaces.lock().unwrap().is_empty());
    assert!(store.inventory(TARGET).await.unwrap().is_empty());
}

/// The SQL catalog, on SQLite and on PostgreSQL: a run of creates written in batches (900
/// property rows, so several multi-row upserts) leaves the catalog as creating the same
/// namespaces one by one does, including a namespace without properties and one given twice.
/// Each catalog name is unique to the run, as catalogs sharing one database are told apart.
#[tokio::test]
async fn the_sql_catalog_on_sqlite_creates_a_run_of_namespaces_like_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/catalog.db?mode=rwc", dir.path().display());
    a_run_of_creates_equals_one_by_one(&url).await;
}

#[tokio::test]
async fn the_sql_catalog_on_postgresql_creates_a_run_of_namespaces_like_one_by_one() {
    const VAR: &str = "OLO_TEST_POSTGRES_URL";
    let url = std::env::var(VAR).unwrap_or_else(|_| {
        panic!(
            "{VAR} is not set: this test needs PostgreSQL. Run scripts/test.sh (it starts one), \
             or `export {VAR}=$(scripts/postgres.sh)` and run cargo test again."
        )
    });
    a_run_of_creates_equals_one_by_one(&url).await;
}

async fn a_run_of_creates_equals_one_by_one(url: &str) {
    use olo_reconciler::lakehouse::sql::SqlCatalog;
    use olo_reconciler::lakehouse::warehouse::Warehouses;
    let files = Arc::new(Warehouses::new(None).unwrap());
    let catalog = SqlCatalog::open(url, files).await.unwrap();
    let run = format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let (batch, single) = (format!("batch_{run}"), format!("single_{run}"));
    let props = |i: usize| -> BTreeMap<String, String> {
        (0..3)
            .map(|k| (format!("key{k}"), format!("value {i}.{k} 'quoted'")))
            .collect()
    };
    let mut wanted: Vec<(String, BTreeMap<String, String>)> =
        (0..300).map(|i| (format!("ns{i:03}"), props(i))).collect();
    wanted.push(("bare".into(), BTreeMap::new()));
    wanted.push(("ns007".into(), props(1000)));
    let ids = |catalog: &str| -> Vec<NamespaceId> {
        wanted
            .iter()
            .map(|(name, _)| NamespaceId::new(catalog, &[name.as_str()]))
            .collect()
    };
    let (batch_ids, single_ids) = (ids(&batch), ids(&single));
    let runs: Vec<(&NamespaceId, &BTreeMap<String, String>)> = batch_ids
        .iter()
        .zip(wanted.iter().map(|(_, p)| p))
        .collect();
    catalog.create_namespaces(&runs).await.unwrap();
    for (id, (_, p)) in single_ids.iter().zip(&wanted) {
        catalog.create_namespace(id, p).await.unwrap();
    }
    for (b, s) in batch_ids.iter().zip(&single_ids) {
        let got = catalog.load_namespace(b).await.unwrap();
        assert!(got.is_some(), "{b}");
        assert_eq!(got, catalog.load_namespace(s).await.unwrap(), "{b}");
    }
    assert_eq!(
        catalog.load_namespace(&batch_ids[7]).await.unwrap(),
        Some(props(1000))
    );
    assert_eq!(
        catalog.load_namespace(&batch_ids[300]).await.unwrap(),
        Some([("exists".to_string(), "true".to_string())].into())
    );
    // Creating them again changes nothing.
    catalog.create_namespaces(&runs).await.unwrap();
    assert_eq!(
        catalog.load_namespace(&batch_ids[0]).await.unwrap(),
        Some(props(0))
    );
    for id in batch_ids.iter().chain(&single_ids) {
        catalog.drop_namespace(id).await.unwrap();
    }
    assert_eq!(catalog.load_namespace(&batch_ids[0]).await.unwrap(), None);
}
