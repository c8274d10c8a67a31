//! What events say of runs, datasets and names ([`Observed`]), in Marquez's shapes.

use serde_json::{json, Value};

use super::*;
use crate::openlineage::{self, Event};

fn parsed(v: &Value) -> Event {
    openlineage::check(v).unwrap()
}

fn run_event(kind: &str, run: &str, time: &str, facets: Value) -> Value {
    json!({
        "eventType": kind,
        "eventTime": time,
        "producer": "https://github.com/apache/airflow/tree/providers-openlineage/2.3.0",
        "run": {"runId": run, "facets": facets},
        "job": {"namespace": "default", "name": "sales__orders_daily.revenue"},
        "inputs": [{"namespace": "sales", "name": "silver.orders"}],
        "outputs": [{"namespace": "sales", "name": "gold.revenue", "facets": {"schema": {
            "_producer": "https://github.com/dbt-labs/dbt-core",
            "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json",
            "fields": [
                {"name": "day", "type": "DATE"},
                {"name": "revenue", "type": "DECIMAL(18,2)", "description": "net of refunds"}
            ]
        }}}]
    })
}

const RUN_1: &str = "01930f5e-7b7e-7c4c-9a52-000000000001";
const RUN_2: &str = "01930f5e-7b7e-7c4c-9a52-000000000002";

/// The events of two runs of `orders_daily` (the first completed, the second failed), as the
/// ingest records them: the job in olo's names, the datasets too.
fn observed(order: &[usize]) -> Observed {
    let failure = json!({"errorMessage": {
        "_producer": "https://github.com/apache/airflow",
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json",
        "message": "gold.revenue is locked", "programmingLanguage": "python"
    }});
    let events = [
        run_event("START", RUN_1, "2026-11-27T04:29:00", json!({})),
        run_event("COMPLETE", RUN_1, "2026-11-27T04:30:00Z", json!({})),
        run_event("START", RUN_2, "2026-11-28T04:29:00Z", json!({})),
        run_event("FAIL", RUN_2, "2026-11-28T04:29:30Z", failure),
    ];
    let job = NodeRef::job("sales", "orders_daily");
    let datasets = [
        NodeRef::dataset("sales", "silver.orders"),
        NodeRef::dataset("sales", "gold.revenue"),
    ];
    let mut o = Observed::default();
    for i in order {
        o.record(&parsed(&events[*i]), &events[*i], Some(&job), &datasets);
    }
    o
}

#[test]
fn a_job_shows_its_latest_runs_and_a_dataset_its_fields() {
    let o = observed(&[0, 1, 2, 3]);
    let job = NodeRef::job("sales", "orders_daily");
    let revenue = NodeRef::dataset("sales", "gold.revenue");
    let silver = NodeRef::dataset("sales", "silver.orders");
    insta::assert_json_snapshot!(
        "marquez_job_with_runs",
        o.job_json(&job, &[&silver], &[&revenue])
    );
    insta::assert_json_snapshot!("marquez_dataset_with_fields", o.dataset_json(&revenue));
    // The name the events use leads to olo's job; a run is found by id.
    assert_eq!(
        o.alias(&NodeRef::job("default", "sales__orders_daily.revenue")),
        Some(&job)
    );
    assert_eq!(
        o.run(RUN_1).map(|(j, r)| (j, r.state)),
        Some((&job, "COMPLETED"))
    );
}

#[test]
fn events_in_any_order_and_repeated_give_the_same_runs() {
    let want = observed(&[0, 1, 2, 3]);
    let job = NodeRef::job("sales", "orders_daily");
    // START after COMPLETE (events are sent from threads), FAIL before START, and each twice
    // (a replica reading back what it took in itself).
    for order in [vec![1, 0, 3, 2], vec![3, 1, 2, 0, 0, 1, 2, 3]] {
        let got = observed(&order);
        assert_eq!(got.job(&job), want.job(&job), "{order:?}");
        let revenue = NodeRef::dataset("sales", "gold.revenue");
        assert_eq!(
            got.dataset_json(&revenue),
            want.dataset_json(&revenue),
            "{order:?}"
        );
    }
}

#[test]
fn static_lineage_records_a_job_without_runs_and_a_dataset_alone() {
    let mut o = Observed::default();
    let dataset_event = json!({
        "eventTime": "2026-11-27T04:00:00Z",
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python",
        "dataset": {"namespace": "sales", "name": "raw.orders", "facets": {"schema": {
            "_producer": "https://x", "_schemaURL": "https://x",
            "fields": [{"name": "order_id", "type": "BIGINT"}]
        }}}
    });
    let orders = NodeRef::dataset("sales", "raw.orders");
    o.record(
        &parsed(&dataset_event),
        &dataset_event,
        None,
        std::slice::from_ref(&orders),
    );
    let job_event = json!({
        "eventTime": "2026-11-27T05:00:00Z",
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python",
        "job": {"namespace": "default", "name": "reporting.weekly"},
        "inputs": [{"namespace": "sales", "name": "raw.orders"}]
    });
    let weekly = NodeRef::job("default", "reporting.weekly");
    o.record(
        &parsed(&job_event),
        &job_event,
        Some(&weekly),
        std::slice::from_ref(&orders),
    );
    let d = o.dataset_json(&orders);
    assert_eq!(
        d["fields"],
        json!([{"name": "order_id", "type": "BIGINT", "tags": [], "description": null}])
    );
    assert_eq!(
        (d["createdAt"].as_str(), d["updatedAt"].as_str()),
        (Some("2026-11-27T04:00:00Z"), Some("2026-11-27T05:00:00Z"))
    );
    let j = o.job_json(&weekly, &[&orders], &[]);
    assert_eq!(
        (j["latestRun"].clone(), j["latestRuns"].clone()),
        (Value::Null, json!([]))
    );
    assert_eq!(j["createdAt"], "2026-11-27T05:00:00Z");
    // Its own name: no alias.
    assert_eq!(o.alias(&weekly), None);
}

#[test]
fn a_job_keeps_its_newest_runs() {
    let mut o = Observed::default();
    let job = NodeRef::job("w", "j");
    for i in 0..RUNS_PER_JOB + 5 {
        let e = json!({
            "eventType": "COMPLETE",
            "eventTime": format!("2026-11-27T04:{:02}:{:02}Z", i / 60, i % 60),
            "producer": "https://x",
            "run": {"runId": format!("01930f5e-7b7e-7c4c-9a52-{i:012}")},
            "job": {"namespace": "w", "name": "j"}
        });
        o.record(&parsed(&e), &e, Some(&job), &[]);
    }
    let runs = &o.job(&job).unwrap().runs;
    assert_eq!(runs.len(), RUNS_PER_JOB);
    assert_eq!(runs[0].id, "01930f5e-7b7e-7c4c-9a52-000000000005");
    assert!(o.run("01930f5e-7b7e-7c4c-9a52-000000000004").is_none());
    assert!(o.run("01930f5e-7b7e-7c4c-9a52-000000000005").is_some());
}

#[test]
fn what_was_recorded_under_a_sent_name_moves_to_olo_s_name() {
    // Read back at start before the catalog was known: recorded under the names events used.
    let e = run_event("COMPLETE", RUN_1, "2026-11-27T04:30:00Z", json!({}));
    let sent = NodeRef::job("default", "sales__orders_daily.revenue");
    let mut o = Observed::default();
    o.record(
        &parsed(&e),
        &e,
        Some(&sent),
        &[NodeRef::dataset("sales", "silver.orders")],
    );
    let olo = NodeRef::job("sales", "orders_daily");
    let job = |j: &NodeRef| if *j == sent { olo.clone() } else { j.clone() };
    o.rename(job, |d| d.clone());
    assert!(o.job(&sent).is_none());
    assert_eq!(o.job(&olo).unwrap().runs[0].state, "COMPLETED");
    assert_eq!(o.alias(&sent), Some(&olo));
    assert_eq!(o.run(RUN_1).map(|(j, _)| j), Some(&olo));
    // Renaming again changes nothing.
    let before = o.job(&olo).cloned();
    o.rename(job, |d| d.clone());
    assert_eq!(o.job(&olo).cloned(), before);
}
