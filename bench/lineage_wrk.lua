-- wrk script for scripts/bench-lineage-wrk.sh: real OpenLineage RunEvents posted to a running
-- `olo serve` (POST /api/v1/lineage), or depth-5 graph queries (GET /api/v1/lineage), with the
-- API token as `Authorization: Bearer`. wrk is the load generator; nothing here is olo's code.
--
--   LINEAGE_WRK_TOKEN=<token> LINEAGE_WRK_THREADS=2 [LINEAGE_WRK_SEED=<n>] \
--       wrk -t2 -c32 -d20s --latency -s bench/lineage_wrk.lua http://127.0.0.1:PORT
--   LINEAGE_WRK_MODE=query LINEAGE_WRK_NODES=job:sales:orders_daily,... wrk -t1 -c1 ... (queries)
--
-- Events are serialized as openlineage-python 1.x serializes a RunEvent (its keys, in its order,
-- the empty facets included). Each wrk thread counts its requests: request n of a thread belongs
-- to run n / 2 of that thread, START when n is even and COMPLETE when odd (a run's lifecycle, as
-- Airflow's provider reports it), so the run ids are unique to a thread, a wrk invocation
-- (LINEAGE_WRK_SEED) and a run, and no two requests are duplicates (same run, type, time, job).
-- Runs alternate between two families:
--   * the example repository's tasks, named as Airflow's OpenLineage provider names them
--     (namespace `default`, `<dag_id>.<task_id>`, e.g. `sales__orders_daily.revenue`), their
--     tables named as Trino's event listener does (`trino://trino:8080`,
--     `lake.sales.silver.orders`) and Spark's (`s3://lakehouse`, `sales/bronze/orders`): olo maps
--     each onto its own job and tables;
--   * section 7's graph (bench/lineage_load.py's events): job `bench.job<j>` (namespace `default`,
--     j counting from LINEAGE_WRK_BENCH_FIRST and cycling over 25,000 jobs), reading `db.t<j>`
--     and a far table, writing `db.t<2j+1>` and `db.t<2j+2>` (namespace `bench`): a connected,
--     branching graph of 100,000 edges once every job has run.
-- A response outside 2xx counts as an error (its first status and body are printed), and a 2xx
-- answering {"status": "duplicate"} as a duplicate. done() prints one line `wrk-result {json}`.

local token = os.getenv("LINEAGE_WRK_TOKEN") or ""
local mode = os.getenv("LINEAGE_WRK_MODE") or "ingest"
local seed = tonumber(os.getenv("LINEAGE_WRK_SEED") or "") or os.time()
local depth = os.getenv("LINEAGE_WRK_DEPTH") or "5"
local nodes_env = os.getenv("LINEAGE_WRK_NODES") or "job:sales:orders_daily"
local nthreads = tonumber(os.getenv("LINEAGE_WRK_THREADS") or "") or 2
-- The first bench job of this invocation (the script passes the number of bench runs already
-- posted, so that a measured run goes on growing the graph where the warm-up left it).
local bench_first = tonumber(os.getenv("LINEAGE_WRK_BENCH_FIRST") or "") or 0

local PRODUCER = "https://github.com/openlake/olo/bench/lineage_wrk.lua"
local SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
local BENCH_JOBS = 25000
local BENCH_TABLES = 2 * BENCH_JOBS + 3

local TRINO = "trino://trino:8080"
-- The example repository's tasks with declared inputs or outputs: {job name, inputs, outputs},
-- each dataset {namespace, name}.
local TEMPLATES = {
  { "sales__orders_daily.ingest",
    { { "s3a://landing", "sales/orders" } },
    { { "s3://lakehouse", "sales/bronze/orders" } } },
  { "sales__orders_daily.clean",
    { { TRINO, "lake.sales.bronze.orders" } },
    { { TRINO, "lake.sales.silver.orders" } } },
  { "sales__orders_daily.revenue",
    { { TRINO, "lake.sales.silver.orders" } },
    { { TRINO, "lake.sales.gold.revenue" } } },
  { "sales__orders_daily.train",
    { { TRINO, "lake.sales.gold.revenue" } },
    {} },
  { "sales__customers_hourly.upsert_customers",
    { { TRINO, "lake.sales.bronze.customers" } },
    { { TRINO, "lake.sales.silver.customers" } } },
  { "sales__customers_hourly.customer_summary",
    { { TRINO, "lake.sales.silver.customers" }, { TRINO, "lake.sales.silver.orders" } },
    { { TRINO, "lake.sales.gold.customer_summary" } } },
  { "marketing__campaign_report.build_report",
    { { TRINO, "lake.marketing.raw.campaign_spend" }, { TRINO, "lake.sales.gold.revenue" } },
    { { TRINO, "lake.marketing.curated.campaign_report" } } },
}

local threads = {}

-- Runs in wrk's main Lua state, once per thread before that thread starts (a thread may start
-- before the next one is set up, so the number of threads comes from LINEAGE_WRK_THREADS).
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state).
local n = 0
errors = 0
duplicates = 0
responses = 0
first_error = ""
local headers = {}
local nodes = {}
local last_second, now_text = -1, ""

local function event_time()
  local s = os.time()
  if s ~= last_second then
    last_second = s
    now_text = os.date("!%Y-%m-%dT%H:%M:%SZ", s)
  end
  return now_text
end

local function datasets(list, facet_key)
  local parts = {}
  for i, d in ipairs(list) do
    parts[i] = string.format('{"facets": {}, "%s": {}, "name": "%s", "namespace": "%s"}',
      facet_key, d[2], d[1])
  end
  return "[" .. table.concat(parts, ", ") .. "]"
end

local function outputs(list)
  -- openlineage-python puts outputFacets after namespace (keys sorted).
  local parts = {}
  for i, d in ipairs(list) do
    parts[i] = string.format('{"facets": {}, "name": "%s", "namespace": "%s", "outputFacets": {}}',
      d[2], d[1])
  end
  return "[" .. table.concat(parts, ", ") .. "]"
end

local function bench_event(j)
  local function t(i) return { "bench", "db.t" .. (i % BENCH_TABLES) } end
  return "default", "bench.job" .. j,
    { t(j), t(j * 7919 + 13) },
    { t(2 * j + 1), t(2 * j + 2) }
end

function init(args)
  headers["Authorization"] = "Bearer " .. token
  headers["Content-Type"] = "application/json"
  for node in string.gmatch(nodes_env, "[^,]+") do
    table.insert(nodes, node)
  end
end

function request()
  local k = n
  n = n + 1
  if mode == "query" then
    local node = nodes[(k % #nodes) + 1]
    return wrk.format("GET", "/api/v1/lineage?nodeId=" .. node .. "&depth=" .. depth, headers)
  end
  local run = math.floor(k / 2)
  local kind = (k % 2 == 0) and "START" or "COMPLETE"
  -- Runs numbered across threads: run r of thread `tid` is global run r * nthreads + tid.
  local global = run * nthreads + tid
  local ns, name, ins, outs
  if global % 2 == 0 then
    ns, name, ins, outs = bench_event((bench_first + global / 2) % BENCH_JOBS)
  else
    local tpl = TEMPLATES[((global - 1) / 2) % #TEMPLATES + 1]
    ns, name, ins, outs = "default", tpl[1], tpl[2], tpl[3]
  end
  local run_id = string.format("%08x-%04x-4000-8000-0000%08x", seed % 4294967296, tid, run)
  local body = string.format(
    '{"eventTime": "%s", "eventType": "%s", "inputs": %s, "job": {"facets": {}, "name": "%s", '
    .. '"namespace": "%s"}, "outputs": %s, "producer": "%s", "run": {"facets": {}, "runId": "%s"}, '
    .. '"schemaURL": "%s"}',
    event_time(), kind, datasets(ins, "inputFacets"), name, ns, outputs(outs), PRODUCER, run_id,
    SCHEMA_URL)
  return wrk.format("POST", "/api/v1/lineage", headers, body)
end

function response(status, hdrs, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    errors = errors + 1
    if first_error == "" then
      first_error = status .. " " .. string.sub(body or "", 1, 200)
    end
  elseif mode ~= "query" and body and string.find(body, '"duplicate"', 1, true) then
    duplicates = duplicates + 1
  end
end

function done(summary, latency, requests)
  local errs, dups, resp, first = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    errs = errs + t:get("errors")
    dups = dups + t:get("duplicates")
    resp = resp + t:get("responses")
    local f = t:get("first_error")
    if first == "" and f ~= "" then first = f end
  end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local function ms(p) return latency:percentile(p) / 1000 end
  io.write(string.format(
    'wrk-result {"mode": "%s", "requests": %d, "responses": %d, "seconds": %.3f, '
    .. '"requests_per_second": %.1f, "non_2xx": %d, "duplicates": %d, "socket_errors": %d, '
    .. '"p50_ms": %.2f, "p90_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f, "first_error": "%s"}\n',
    mode, summary.requests, resp, seconds, summary.requests / seconds, errs, dups,
    e.connect + e.read + e.write + e.timeout, ms(50), ms(90), ms(99), latency.max / 1000,
    (string.gsub(first, '["\\\n]', " "))))
end
