"""OpenLineage's and Marquez's own Python clients against a running olo (tests/e2e/lineage.rs).

    python clients.py <olo base URL> <API token>

openlineage-python posts, gzip-compressed (`compression: gzip`) with the token as its API key:
two runs of `default/w__refine.t` (one completed, its START with a naive eventTime as
`datetime.isoformat()` writes it; one failed, with an errorMessage facet), a DatasetEvent with a
schema facet and a JobEvent; the runs' output and the JobEvent's carry `columnLineage` facets (the
newer form, `transformations` per input, one input named as Trino names it; and the older form).
Then marquez-python reads namespaces, jobs, datasets and runs back, and the column lineage
(`get_column_lineage_by_*`). It has no method for `GET /api/v1/lineage/`, `/search` or
`/events/lineage` (its `list_events` asks `/events`, a path Marquez no longer serves), so those
are read through the client's own request helper (`_get`, the one every read method uses). Prints
what it read as one JSON document; any refusal raises, and the exit status says so.
"""

import datetime
import json
import sys

from marquez_client import MarquezClient
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    DatasetEvent,
    InputDataset,
    Job,
    JobEvent,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.facet_v2 import column_lineage_dataset, error_message_run, schema_dataset
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpCompression,
    HttpConfig,
    HttpTransport,
)

PRODUCER = "https://github.com/openlake/olo/tests/openlineage/clients.py"
RUN_OK = "01930f5e-7b7e-7c4c-9a52-000000000001"
RUN_FAILED = "01930f5e-7b7e-7c4c-9a52-000000000002"


def schema(*fields):
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(name=name, type=kind)
            for name, kind in fields
        ]
    )


def direct(namespace, name, field, subtype, description):
    return column_lineage_dataset.InputField(
        namespace=namespace,
        name=name,
        field=field,
        transformations=[
            column_lineage_dataset.Transformation(
                type="DIRECT", subtype=subtype, description=description, masking=False
            )
        ],
    )


# gold.revenue's fields from raw.orders: `revenue` named as olo names the table, `day` as Trino
# names it (catalog `lake`, namespace `w.raw`).
REVENUE_COLUMNS = column_lineage_dataset.ColumnLineageDatasetFacet(
    fields={
        "revenue": column_lineage_dataset.Fields(
            inputFields=[direct("w", "raw.orders", "amount", "AGGREGATION", "sum(amount)")]
        ),
        "day": column_lineage_dataset.Fields(
            inputFields=[
                direct("trino://trino:8080", "lake.w.raw.orders", "ordered_at", "TRANSFORMATION", "date(ordered_at)")
            ]
        ),
    }
)


def run_event(state, run_id, time, facets=None):
    return RunEvent(
        eventType=state,
        eventTime=time,
        producer=PRODUCER,
        run=Run(runId=run_id, facets=facets or {}),
        job=Job(namespace="default", name="w__refine.t"),
        inputs=[InputDataset(namespace="w", name="raw.orders")],
        outputs=[
            OutputDataset(
                namespace="w",
                name="gold.revenue",
                facets={
                    "schema": schema(("day", "DATE"), ("revenue", "DECIMAL(18,2)")),
                    "columnLineage": REVENUE_COLUMNS,
                },
            )
        ],
    )


def main():
    base, token = sys.argv[1], sys.argv[2]
    client = OpenLineageClient(
        transport=HttpTransport(
            HttpConfig(
                url=base,
                endpoint="api/v1/lineage",
                compression=HttpCompression.GZIP,
                auth=ApiKeyTokenProvider({"apiKey": token}),
            )
        )
    )
    # What datetime.now().isoformat() gives: no offset.
    naive = datetime.datetime(2026, 11, 27, 4, 29, 0).isoformat()
    failure = error_message_run.ErrorMessageRunFacet(
        message="gold.revenue is locked by another writer", programmingLanguage="python"
    )
    for event in [
        run_event(RunState.START, RUN_OK, naive),
        run_event(RunState.COMPLETE, RUN_OK, "2026-11-27T04:30:00+00:00"),
        run_event(RunState.START, RUN_FAILED, "2026-11-28T04:29:00Z"),
        run_event(RunState.FAIL, RUN_FAILED, "2026-11-28T04:29:30Z", {"errorMessage": failure}),
        DatasetEvent(
            eventTime="2026-11-27T04:00:00Z",
            producer=PRODUCER,
            dataset=StaticDataset(
                namespace="w",
                name="raw.orders",
                facets={"schema": schema(("order_id", "BIGINT"), ("amount", "DECIMAL(18,2)"))},
            ),
        ),
        JobEvent(
            eventTime="2026-11-27T05:00:00Z",
            producer=PRODUCER,
            job=Job(namespace="default", name="reporting.weekly"),
            inputs=[InputDataset(namespace="w", name="gold.revenue")],
            outputs=[
                OutputDataset(
                    namespace="reports",
                    name="weekly",
                    facets={
                        # The facet's older form: how, per output field.
                        "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet(
                            fields={
                                "total": column_lineage_dataset.Fields(
                                    inputFields=[
                                        column_lineage_dataset.InputField(
                                            namespace="w", name="gold.revenue", field="revenue"
                                        )
                                    ],
                                    transformationDescription="sum(revenue) per week",
                                    transformationType="IDENTITY",
                                )
                            }
                        )
                    },
                )
            ],
        ),
    ]:
        client.emit(event)

    marquez = MarquezClient(url=base, api_key=token)
    read = {
        "namespaces": marquez.list_namespaces(),
        "namespace": marquez.get_namespace("w"),
        "jobs": marquez.list_jobs("w"),
        # The job by the name its events use.
        "job_by_event_name": marquez.get_job("default", "w__refine.t"),
        "static_job": marquez.get_job("default", "reporting.weekly"),
        "runs": marquez.list_job_runs("w", "refine"),
        "run": marquez.get_job_run(RUN_OK),
        "datasets": marquez.list_datasets("w"),
        "dataset": marquez.get_dataset("w", "gold.revenue"),
        "lineage": marquez._get(
            marquez._url("/lineage/"),
            params={"nodeId": "job:default:w__refine.t", "depth": 5},
        ),
        "columns_of_field": marquez.get_column_lineage_by_dataset_field("w", "gold.revenue", "revenue"),
        "columns_of_dataset": marquez.get_column_lineage_by_dataset(
            "w", "gold.revenue", depth=1, with_downstream=True
        ),
        "columns_of_job": marquez.get_column_lineage_by_job("default", "w__refine.t"),
        "search": marquez._get(marquez._url("/search"), params={"q": "RE"}),
        "search_datasets": marquez._get(
            marquez._url("/search"),
            params={"q": "e", "filter": "dataset", "sort": "update_at", "limit": 2},
        ),
        "events": marquez._get(
            marquez._url("/events/lineage"),
            params={"sortDirection": "asc", "after": "2026-11-27T04:29:00+00:00", "limit": 2, "offset": 1},
        ),
        "events_newest": marquez._get(marquez._url("/events/lineage"), params={"limit": 1}),
        # What Marquez's web UI asks for besides: tags, the jobs of every namespace, a run's facets.
        "tags": marquez.list_tags(),
        "failed_jobs": marquez._get(marquez._url("/jobs"), params={"lastRunStates": "FAILED"}),
        "versions": marquez.list_dataset_versions("w", "gold.revenue"),
        "run_facets": marquez._get(
            marquez._url("/jobs/runs/{}/facets", RUN_FAILED), params={"type": "run"}
        ),
    }
    # The current version by the id the list gave, through the client's own method.
    version = read["versions"]["versions"][0]["version"]
    read["version"] = marquez.get_dataset_version("w", "gold.revenue", version)
    json.dump(read, sys.stdout)


if __name__ == "__main__":
    main()
