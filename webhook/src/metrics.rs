//! Prometheus metrics with bounded label sets (outcome kinds, event types, run states: never a
//! label per job or run).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// Lineage events: recorded, duplicate, invalid, unauthorized. SQL queries: ok, truncated,
    /// or the API error code (unauthorized, not_read_only, access_denied, trino_unavailable, …).
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// applied, invalid, temporary_error, permanent_error
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// ping, push, pull_request, other
    pub event: &'static str,
    /// queued, ignored, duplicate, bad_signature, bad_payload, unreadable (too large, too slow,
    /// too many large ones at once)
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallerLabels {
    /// unauthenticated (a credential that is not good), anonymous (none), signed_in (a 403)
    pub caller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// snapshot, validate, catalog, render, render shared, plan, lakehouse, apply, check, store
    pub phase: &'static str,
}

/// Buckets for one phase of a reconcile: from a millisecond to a minute.
fn phase_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
    ])
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<OutcomeLabels, Counter>,
    pub reconcile_seconds: Histogram,
    /// The time of each phase of a reconcile (where a slow reconcile spent it).
    pub reconcile_phase_seconds: Family<PhaseLabels, Histogram, fn() -> Histogram>,
    pub webhook_deliveries: Family<DeliveryLabels, Counter>,
    pub pull_request_plans: Family<OutcomeLabels, Counter>,
    pub runs_triggered: Counter,
    pub lineage_events: Family<ResultLabels, Counter>,
    /// olo's time per accepted lineage event: from the body read to the durable answer.
    pub lineage_ingest_seconds: Histogram,
    /// Queries of the SQL runner, by result (see [`crate::sql`]).
    pub sql_queries: Family<ResultLabels, Counter>,
    /// Set at scrape time from the state store.
    pub runs: Family<StateLabels, Gauge>,
    /// 1 while this replica does the leader's work (it leads, or it is the only one), else 0:
    /// summed over replicas it is 1 unless there is no leader (0) or two (2).
    pub leader: Gauge,
    /// Times this replica took the lead.
    pub leadership_changes: Counter,
    /// Refused requests (401 on writes, every 403), by kind of caller: each is counted here,
    /// while the audit log holds one summary per source and interval of the anonymous ones.
    pub denied_requests: Family<CallerLabels, Counter>,
    /// Reads of the tracked branch's tip, one per trigger taken (also when nothing changed).
    pub branch_reads: Counter,
    /// Set at scrape time: stored OpenLineage events read back since start.
    pub lineage_events_read_back: Gauge,
    /// Set at scrape time: column lineage fields not kept because of its memory bound.
    pub lineage_column_fields_refused: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("olo");
        let reconciles = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles of the tracked branch, by outcome",
            reconciles.clone(),
        );
        let reconcile_seconds = Histogram::new([
            0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        ]);
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconciles",
            reconcile_seconds.clone(),
        );
        let reconcile_phase_seconds: Family<PhaseLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(phase_histogram);
        registry.register(
            "reconcile_phase_duration_seconds",
            "Duration of each phase of a reconcile",
            reconcile_phase_seconds.clone(),
        );
        let webhook_deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "GitHub webhook deliveries, by event and result",
            webhook_deliveries.clone(),
        );
        let pull_request_plans = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "pull_request_plans",
            "Plans of pull requests, by outcome",
            pull_request_plans.clone(),
        );
        let runs_triggered = Counter::default();
        registry.register(
            "runs_triggered",
            "Airflow DAG runs triggered by olo",
            runs_triggered.clone(),
        );
        let lineage_events = Family::<ResultLabels, Counter>::default();
        registry.register(
            "lineage_events",
            "OpenLineage events received, by result",
            lineage_events.clone(),
        );
        let lineage_ingest_seconds = phase_histogram();
        registry.register(
            "lineage_ingest_duration_seconds",
            "olo's time per lineage event it recorded or found a duplicate: decode, check, and the durable write (group commit)",
            lineage_ingest_seconds.clone(),
        );
        let lineage_events_read_back = Gauge::default();
        registry.register(
            "lineage_events_read_back",
            "Stored OpenLineage events read back from the state store since start (at start each once, after the first reconcile, in the live commit's names)",
            lineage_events_read_back.clone(),
        );
        let lineage_column_fields_refused = Gauge::default();
        registry.register(
            "lineage_column_fields_refused",
            "Column lineage output fields (and input fields past 1,000 per output) not kept because of the bound on what column lineage holds (500,000 output fields)",
            lineage_column_fields_refused.clone(),
        );
        let sql_queries = Family::<ResultLabels, Counter>::default();
        registry.register(
            "sql_queries",
            "Queries of the SQL runner, by result",
            sql_queries.clone(),
        );
        let runs = Family::<StateLabels, Gauge>::default();
        registry.register("runs", "Runs olo knows of, by state", runs.clone());
        let leader = Gauge::default();
        leader.set(1);
        registry.register(
            "leader",
            "1 while this replica reconciles (it leads, or it is the only one), else 0",
            leader.clone(),
        );
        let leadership_changes = Counter::default();
        registry.register(
            "leadership_changes",
            "Times this replica took the lead",
            leadership_changes.clone(),
        );
        let denied_requests = Family::<CallerLabels, Counter>::default();
        registry.register(
            "denied_requests",
            "Refused requests (writes without a good credential, and every 403), by caller",
            denied_requests.clone(),
        );
        let branch_reads = Counter::default();
        registry.register(
            "branch_reads",
            "Reads of the tracked branch's tip (a fetch, or a local folder's import), one per trigger taken, also when nothing changed",
            branch_reads.clone(),
        );
        Metrics {
            branch_reads,
            lineage_events_read_back,
            lineage_column_fields_refused,
            denied_requests,
            registry,
            reconciles,
            reconcile_seconds,
            reconcile_phase_seconds,
            webhook_deliveries,
            pull_request_plans,
            runs_triggered,
            lineage_events,
            lineage_ingest_seconds,
            sql_queries,
            runs,
            leader,
            leadership_changes,
        }
    }
}

impl Metrics {
    /// A reconcile: its outcome, its time and the time of each of its phases.
    pub fn record_reconcile(
        &self,
        r: &olo_reconciler::controller::Reconciled,
        phases: &olo_reconciler::engine::Phases,
    ) {
        self.reconcile_seconds.observe(r.elapsed.as_secs_f64());
        for (phase, elapsed) in phases.laps() {
            self.reconcile_phase_seconds
                .get_or_create(&PhaseLabels { phase })
                .observe(elapsed.as_secs_f64());
        }
        self.reconciles
            .get_or_create(&OutcomeLabels {
                outcome: r.outcome_label(),
            })
            .inc();
    }

    /// A pull request planned (`planned`, `invalid`) or not (`error`).
    pub fn count_pull_request_plan(&self, outcome: &'static str) {
        self.pull_request_plans
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
