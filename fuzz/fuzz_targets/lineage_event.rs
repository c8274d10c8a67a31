//! OpenLineage events as `POST /api/v1/lineage` takes them: parsed and checked, named in olo's
//! terms against the example repository's catalog (Trino, Spark symlink and `s3a://` names
//! mapped to declared tables), recorded into what olo serves (runs, dataset fields, column
//! lineage, the graph), then walked and drawn in Marquez's shape.
//!
//! Checked: nothing panics; an event that passes the check reads the same when checked again
//! from its JSON (what start-up does with stored events) and has a stable dedupe key; the walk
//! from its job reaches every dataset it names; the Marquez answer serializes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use olo_reconciler::catalog::Catalog;
use olo_reconciler::lineage::{column, marquez, Graph, NodeRef, Observed, Resolver, OBSERVED};
use olo_reconciler::openlineage::{self, Event};

fn resolver() -> &'static Resolver {
    static RESOLVER: OnceLock<Resolver> = OnceLock::new();
    RESOLVER.get_or_init(|| {
        let validation = olo_schema::validate(olo_fuzz::example_snapshot(None));
        let repo = validation.repo.expect("the example repository validates");
        Resolver::new(&Catalog::from_repo(&repo, None))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok((event, raw)) = openlineage::parse(data) else {
        return;
    };
    assert_eq!(openlineage::check(&raw).as_ref(), Ok(&event));
    assert_eq!(event.dedupe_key(), event.clone().dedupe_key());

    let resolver = resolver();
    let (inputs, outputs) = match &event {
        Event::Run(e) => (&e.inputs[..], &e.outputs[..]),
        Event::Job(e) => (&e.inputs[..], &e.outputs[..]),
        Event::Dataset(e) => (std::slice::from_ref(&e.dataset), &[][..]),
    };
    let datasets: Vec<NodeRef> = inputs
        .iter()
        .chain(outputs)
        .map(|d| resolver.dataset(d))
        .collect();
    let job = event.job().map(|(ns, name)| resolver.job(ns, name));

    let mut observed = Observed::default();
    observed.record(&event, &raw, job.as_ref(), &datasets);
    let time = event.event_time().with_timezone(&chrono::Utc);
    let written = &datasets[datasets.len() - outputs.len()..];
    for (i, facet) in column::output_facets(&raw) {
        let fields = column::parse_facet(facet, |namespace, name| {
            resolver.dataset(&openlineage::DatasetRef {
                namespace: namespace.into(),
                name: name.into(),
                symlinks: Vec::new(),
            })
        });
        if let Some(output) = written.get(i) {
            observed.record_columns(output, time, fields);
        }
    }

    // The graph holds edges: a job with no dataset is not in it.
    let Some(job) = job.filter(|_| !datasets.is_empty()) else {
        return;
    };
    let mut graph = Graph::default();
    let (read, _) = datasets.split_at(inputs.len());
    for d in read {
        graph.add(d, &job, OBSERVED);
    }
    for d in written {
        graph.add(&job, d, OBSERVED);
    }
    let limit = datasets.len() + 1;
    let sub = graph.walk(&job, 1, limit).expect("the job is in the graph");
    for d in &datasets {
        assert!(
            sub.nodes.contains(d),
            "{} not reached from {}",
            d.id(),
            job.id()
        );
    }
    assert!(!sub.truncated);
    serde_json::to_string(&marquez(&sub, &observed)).expect("the answer serializes");
});
