//! The Iceberg REST catalog client against a fake catalog (wiremock) that answers as the
//! published spec says (`../shared/reference/iceberg-rest-catalog-openapi.yaml`): the requests
//! olo sends and how it reads the answers. tests/lakehouse.rs drives the same client against a
//! real REST catalog (Iceberg's reference RESTCatalogServer) and reads the result back with
//! PyIceberg.

use std::collections::BTreeMap;
use std::time::Duration;

use olo_reconciler::lakehouse::rest::{RestAuth, RestCatalog, RestSettings};
use olo_reconciler::lakehouse::{IcebergCatalog, LakeError, NamespaceId};
use serde_json::json;
use wiremock::matchers::{body_json, body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn settings(server: &MockServer, auth: RestAuth) -> RestSettings {
    RestSettings {
        uri: format!("{}/catalog/", server.uri()),
        warehouse: None,
        auth,
        timeout: Duration::from_secs(2),
    }
}

fn sales_bronze() -> NamespaceId {
    NamespaceId::new("lake", &["sales", "bronze"])
}

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `/v1/config?warehouse=lake` answering with a prefix, once per catalog (it is cached).
async fn config(server: &MockServer, prefix: &str) {
    Mock::given(method("GET"))
        .and(path("/catalog/v1/config"))
        .and(query_param("warehouse", "lake"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "defaults": {"clients": "4"},
            "overrides": {"prefix": prefix, "warehouse": "s3://lakehouse/"}
        })))
        .expect(1)
        .mount(server)
        .await;
}

fn error(code: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(code)
        .set_body_json(json!({"error": {"message": message, "type": kind, "code": code}}))
}

#[tokio::test]
async fn namespaces_are_loaded_under_the_configured_prefix_with_the_unit_separator() {
    let server = MockServer::start().await;
    config(&server, "ws/lake").await;
    Mock::given(method("GET"))
        .and(path("/catalog/v1/ws/lake/namespaces/sales%1Fbronze"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "namespace": ["sales", "bronze"],
            "properties": {"owner": "sales-eng", "olo.managed-by": "olo"}
        })))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/catalog/v1/ws/lake/namespaces/sales%1Fgold"))
        .respond_with(error(
            404,
            "NoSuchNamespaceException",
            "Namespace does not exist: sales.gold",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let cat = RestCatalog::new(settings(&server, RestAuth::None)).unwrap();
    for _ in 0..2 {
        let got = cat.load_namespace(&sales_bronze()).await.unwrap();
        assert_eq!(
            got,
            Some(props(&[("olo.managed-by", "olo"), ("owner", "sales-eng")]))
        );
    }
    let gold = NamespaceId::new("lake", &["sales", "gold"]);
    assert_eq!(cat.load_namespace(&gold).await.unwrap(), None);
}

#[tokio::test]
async fn create_sends_the_levels_and_properties_and_an_existing_namespace_gets_them_set() {
    let server = MockServer::start().await;
    config(&server, "lake").await;
    let p = props(&[
        ("owner", "sales-eng"),
        ("location", "s3://lakehouse/sales/bronze"),
    ]);
    Mock::given(method("POST"))
        .and(path("/catalog/v1/lake/namespaces"))
        .and(body_json(
            json!({"namespace": ["sales", "bronze"], "properties": p}),
        ))
        .respond_with(error(
            409,
            "AlreadyExistsException",
            "Namespace already exists: sales.bronze",
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(
            "/catalog/v1/lake/namespaces/sales%1Fbronze/properties",
        ))
        .and(body_json(json!({"removals": [], "updates": p})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "updated": ["owner", "location"], "removed": [], "missing": []
        })))
        .expect(1)
        .mount(&server)
        .await;
    let cat = RestCatalog::new(settings(&server, RestAuth::None)).unwrap();
    cat.create_namespace(&sales_bronze(), &p).await.unwrap();
}

#[tokio::test]
async fn updates_send_removals_and_updates_and_refusals_carry_the_catalogs_message() {
    let server = MockServer::start().await;
    config(&server, "lake").await;
    Mock::given(method("POST"))
        .and(path(
            "/catalog/v1/lake/namespaces/sales%1Fbronze/properties",
        ))
        .and(body_json(
            json!({"removals": ["team"], "updates": {"owner": "b"}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "updated": ["owner"], "removed": ["team"], "missing": []
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(
            "/catalog/v1/lake/namespaces/sales%1Fsilver/properties",
        ))
        .respond_with(error(
            422,
            "UnprocessableEntityException",
            "A property key was included in both `removals` and `updates`",
        ))
        .mount(&server)
        .await;
    let cat = RestCatalog::new(settings(&server, RestAuth::None)).unwrap();
    cat.update_properties(&sales_bronze(), &["team".into()], &props(&[("owner", "b")]))
        .await
        .unwrap();
    let silver = NamespaceId::new("lake", &["sales", "silver"]);
    let err = cat
        .update_properties(&silver, &["owner".into()], &props(&[("owner", "b")]))
        .await
        .unwrap_err();
    assert!(!err.is_temporary());
    let text = err.to_string();
    assert!(
        text.contains("UnprocessableEntityException: A property key was included"),
        "{text}"
    );
    assert!(text.contains("lake.sales.silver"), "{text}");
}

#[tokio::test]
async fn tables_and_views_are_counted_across_pages_and_children_listed_by_parent() {
    let server = MockServer::start().await;
    config(&server, "lake").await;
    let ident = |n: &str| json!({"namespace": ["sales", "bronze"], "name": n});
    Mock::given(method("GET"))
        .and(path("/catalog/v1/lake/namespaces/sales%1Fbronze/tables"))
        .and(query_param("pageToken", "p2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"identifiers": [ident("c")]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/catalog/v1/lake/namespaces/sales%1Fbronze/tables"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "identifiers": [ident("a"), ident("b")], "next-page-token": "p2"
        })))
        .expect(1)
        .mount(&server)
        .await;
    // A catalog without views answers 404 for the listing: not an error, zero views.
    Mock::given(method("GET"))
        .and(path("/catalog/v1/lake/namespaces/sales%1Fbronze/views"))
        .respond_with(error(
            404,
            "NoSuchNamespaceException",
            "views not supported",
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/catalog/v1/lake/namespaces"))
        .and(query_param("parent", "sales"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "namespaces": [["sales", "bronze"], ["sales", "gold"]]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let cat = RestCatalog::new(settings(&server, RestAuth::None)).unwrap();
    assert_eq!(cat.count_tables(&sales_bronze()).await.unwrap(), 3);
    let children = cat
        .children(&NamespaceId::new("lake", &["sales"]))
        .await
        .unwrap();
    assert_eq!(
        children,
        vec![sales_bronze(), NamespaceId::new("lake", &["sales", "gold"])]
    );
}

#[tokio::test]
async fn drop_of_a_missing_namespace_is_done_and_of_a_full_one_is_refused() {
    let server = MockServer::start().await;
    config(&server, "lake").await;
    Mock::given(method("DELETE"))
        .and(path("/catalog/v1/lake/namespaces/sales%1Fbronze"))
        .respond_with(error(404, "NoSuchNamespaceException", "gone"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/catalog/v1/lake/namespaces/sales%1Fgold"))
        .respond_with(error(
            409,
            "NamespaceNotEmptyException",
            "Namespace sales.gold is not empty",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let cat = RestCatalog::new(settings(&server, RestAuth::None)).unwrap();
    cat.drop_namespace(&sales_bronze()).await.unwrap();
    let err = cat
        .drop_namespace(&NamespaceId::new("lake", &["sales", "gold"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LakeError::Refused { message, .. } if message.contains("NamespaceNotEmptyException")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_bearer_token_is_sent_and_a_server_error_is_temporary() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/catalog/v1/config"))
        .and(header("authorization", "Bearer static-token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"defaults": {}, "overrides": {}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/catalog/v1/namespaces/sales%1Fbronze"))
        .and(header("authorization", "Bearer static-token"))
        .respond_with(error(503, "ServiceUnavailableException", "slow down"))
        .expect(1)
        .mount(&server)
        .await;
    let cat = RestCatalog::new(settings(
        &server,
        RestAuth::Bearer("static-token".to_string().into()),
    ))
    .unwrap();
    let err = cat.load_namespace(&sales_bronze()).await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("static-token"));
}

#[tokio::test]
async fn client_credentials_are_exchanged_once_and_renewed_after_a_401() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/catalog/v1/oauth/tokens"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("client_id=olo"))
        .and(body_string_contains("client_secret=s3cret"))
        .and(body_string_contains("scope=catalog"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "t1", "token_type": "bearer", "expires_in": 3600,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"
        })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/catalog/v1/oauth/tokens"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "t2", "token_type": "bearer"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/catalog/v1/config"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"overrides": {"prefix": "lake"}})),
        )
        .mount(&server)
        .await;
    // The first token expires between two requests.
    Mock::given(method("GET"))
        .and(path("/catalog/v1/lake/namespaces/sales%1Fbronze"))
        .and(header("authorization", "Bearer t1"))
        .respond_with(error(401, "NotAuthorizedException", "token expired"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/catalog/v1/lake/namespaces/sales%1Fbronze"))
        .and(header("authorization", "Bearer t2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "namespace": ["sales", "bronze"], "properties": {}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let cat = RestCatalog::new(settings(
        &server,
        RestAuth::ClientCredentials {
            client_id: "olo".into(),
            secret: "s3cret".to_string().into(),
            scope: "catalog".into(),
            server: None,
        },
    ))
    .unwrap();
    assert_eq!(
        cat.load_namespace(&sales_bronze()).await.unwrap(),
        Some(BTreeMap::new())
    );
}

#[tokio::test]
async fn a_dead_catalog_is_unavailable_and_says_where() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let cat = RestCatalog::new(RestSettings {
        uri: format!("http://{addr}"),
        warehouse: Some("lake".into()),
        auth: RestAuth::None,
        timeout: Duration::from_secs(2),
    })
    .unwrap();
    let err = cat.load_namespace(&sales_bronze()).await.unwrap_err();
    assert!(err.is_temporary());
    assert!(err.to_string().contains(&format!("http://{addr}")), "{err}");
}

fn revenue() -> olo_reconciler::lakehouse::tables::TableId {
    olo_reconciler::lakehouse::tables::TableId {
        namespace: sales_bronze(),
        name: "revenue".into(),
    }
}

#[tokio::test]
async fn tables_are_loaded_created_and_committed_with_the_specs_shapes() {
    let server = MockServer::start().await;
    config(&server, "lake").await;
    let metadata = json!({"format-version": 2, "current-schema-id": 0, "schemas": []});
    Mock::given(method("GET"))
        .and(path("/catalog/v1/lake/namespaces/sales%1Fbronze/tables/revenue"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "metadata-location": "s3://lakehouse/sales/bronze/revenue/metadata/00000-a.metadata.json",
            "metadata": metadata,
        })))
        .expect(1)
        .mount(&server)
        .await;
    let request =
        json!({"name": "revenue", "schema": {"type": "struct", "schema-id": 0, "fields": []}});
    Mock::given(method("POST"))
        .and(path("/catalog/v1/lake/namespaces/sales%1Fbronze/tables"))
        .and(body_json(request.clone()))
        .respond_with(error(409, "AlreadyExistsException", "Table already exists"))
        .expect(1)
        .mount(&server)
        .await;
    let requirements = vec![json!({"type": "assert-current-schema-id", "current-schema-id": 0})];
    let updates = vec![json!({"action": "set-properties", "updates": {"a": "b"}})];
    Mock::given(method("POST"))
        .and(path(
            "/catalog/v1/lake/namespaces/sales%1Fbronze/tables/revenue",
        ))
        .and(body_json(json!({
            "identifier": {"namespace": ["sales", "bronze"], "name": "revenue"},
            "requirements": requirements,
            "updates": updates,
        })))
        .respond_with(error(
            409,
            "CommitFailedException",
            "Requirement failed: current schema changed",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let cat = RestCatalog::new(settings(&server, RestAuth::None)).unwrap();
    assert_eq!(cat.load_table(&revenue()).await.unwrap(), Some(metadata));
    // An existing table is not an error (a retry after a crash); the next plan evolves it.
    cat.create_table(&revenue(), &request).await.unwrap();
    let err = cat
        .commit_table(&revenue(), &requirements, &updates)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LakeError::Conflict { message, .. } if message.contains("CommitFailedException")),
        "{err:?}"
    );
    assert!(err.is_temporary(), "a conflict is retried");
}
