//! Opening a store: which URLs open which backend, what an open error says, and that an open
//! store answers.

use olo_reconciler::store::{self, PostgresStore, SqliteStore, Store, StoreError};

use super::fixtures::{new_run, revision};
use super::harness::{postgres_admin_url, with_database};

#[tokio::test]
async fn unsupported_url_is_a_url_error() {
    for url in [
        "mysql://localhost/olo",
        "state.db",
        "",
        "sqlite",
        "postgres:/x",
    ] {
        match store::open(url).await {
            Err(StoreError::Url(u)) => assert_eq!(u, url),
            Err(other) => panic!("{url}: expected StoreError::Url, got {other:?}"),
            Ok(_) => panic!("{url}: expected StoreError::Url, got a store"),
        }
    }
}

#[tokio::test]
async fn each_backend_refuses_the_other_scheme() {
    assert!(matches!(
        SqliteStore::open("postgres://localhost/olo").await,
        Err(StoreError::Url(_))
    ));
    assert!(matches!(
        PostgresStore::open("sqlite:state.db").await,
        Err(StoreError::Url(_))
    ));
}

#[tokio::test]
async fn sqlite_bad_url_is_an_open_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?mode=bogus", dir.path().join("s.db").display());
    match SqliteStore::open(&url).await {
        Err(err @ StoreError::Open { .. }) => {
            assert!(err.to_string().contains(&url), "{err}");
            assert!(!err.is_temporary());
        }
        other => panic!("expected StoreError::Open, got {other:?}"),
    }
}

#[tokio::test]
async fn sqlite_creates_missing_folders_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/state.db");
    let store = store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    store
        .record_revision(&revision("main", "a1"))
        .await
        .unwrap();
    assert!(path.is_file());
}

#[tokio::test]
async fn sqlite_in_memory_keeps_data_across_calls() {
    let store = store::open("sqlite::memory:").await.unwrap();
    for sha in ["a", "b", "c", "d", "e", "f"] {
        store.record_revision(&revision("main", sha)).await.unwrap();
    }
    let (a, b) = tokio::join!(
        store.revisions("main", 10, None),
        store.record_delivery("d", "push", None)
    );
    assert_eq!(a.unwrap().len(), 6);
    assert!(b.unwrap());
}

#[tokio::test]
async fn postgres_open_error_hides_the_password() {
    let admin_url = postgres_admin_url();
    let (scheme, rest) = admin_url.split_once("://").unwrap();
    let host_and_path = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let url = with_database(
        &format!("{scheme}://olo:hunter2@{host_and_path}"),
        "no_such_database",
    );
    let err = match PostgresStore::open(&url).await {
        Err(err) => err,
        Ok(_) => panic!("opened a database that does not exist"),
    };
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    let mut messages = vec![err.to_string()];
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        messages.push(cause.to_string());
        source = cause.source();
    }
    let text = messages.join(": ");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("olo:***@"), "{text}");
    assert!(
        !err.is_temporary(),
        "a missing database is not worth retrying"
    );
}

pub async fn ping_answers(store: &dyn Store) {
    store.ping().await.expect("a fresh store answers");
    let run = store
        .insert_run(&new_run("sales", "orders", "manual__1"))
        .await
        .unwrap();
    store.ping().await.expect("the store answers after a write");
    assert!(store.run(run.id).await.unwrap().is_some());
}
