#!/usr/bin/env bash
# Validates the deployment files offline: the compose dev stack (compose/), the Helm chart
# (charts/olo) and the image's Dockerfile. No Docker engine and no Kubernetes cluster are needed,
# and none is used: nothing is built, pulled or installed into a cluster.
#
# Tools (installed on first use, cached; a tool that cannot be installed fails the run):
#   - docker-compose (Debian's package, scripts/setup.sh): `docker-compose config` parses and
#     validates compose/docker-compose.yml against the Compose Specification with .env.example;
#   - a venv from scripts/python-env.sh deploy: helm-python-sdk (Helm 4's Go SDK as a native
#     library: lint, and `install --dry-run=client`, i.e. what `helm template` does, with the
#     chart's values.schema.json), kubernetes-validate (the rendered manifests against the
#     Kubernetes 1.34 OpenAPI schemas, strict: unknown fields fail), yamllint (.yamllint).
#
# Every shipped settings file (compose/olo/olo.toml, the chart's ConfigMap with the pod's
# environment, the image's /etc/olo/olo.toml) is also loaded by olo itself (`olo settings`, the
# binary in $OLO_BIN, default target/debug/olo), so a wrong value fails as it would at start; the
# port olo then listens on is checked against the ports the compose health check, the Dockerfile's
# HEALTHCHECK and EXPOSE, the chart's container port, probes and Service use.
#
# Each check prints one line. The negative checks break something on purpose (a wrong value for
# the chart's schema, 3 replicas without PostgreSQL, a broken compose file, a manifest with a
# misspelt field, a settings value olo refuses, a listen port the probes do not use, a probe on a
# port that does not exist) and pass only when the check refuses it.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
kube_version=1.34.0
checks=0
ok() {
    checks=$((checks + 1))
    echo "ok: $*"
}
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# --- tools ---------------------------------------------------------------------------------------
olo_bin="${OLO_BIN:-target/debug/olo}"
[ -x "$olo_bin" ] || fail "$olo_bin does not exist: build olo first (cargo build), or set OLO_BIN"
export OLO_BIN="$olo_bin"
if ! command -v docker-compose >/dev/null; then
    fail "docker-compose is not installed (scripts/setup.sh installs Debian's docker-compose package)"
fi
if ! venv="$(scripts/python-env.sh deploy)"; then
    fail "could not install the validators (scripts/python-env.sh deploy: helm-python-sdk, kubernetes-validate, yamllint)"
fi
py="$venv/bin/python"
for tool in yamllint kubernetes-validate; do
    [ -x "$venv/bin/$tool" ] || fail "$tool missing from $venv"
done
"$py" -c 'import helm_python' 2>/dev/null || fail "helm_python (helm-python-sdk) does not import in $venv"
echo "tools: $(docker-compose version --short 2>/dev/null || docker-compose version | head -n 1)" \
    "| helm SDK $("$py" -c 'import helm_python as h; print(h.helm_sdk_version())')" \
    "| $("$venv/bin/kubernetes-validate" --version 2>&1 | tail -n 1)" \
    "| $("$venv/bin/yamllint" --version)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The Python side of the checks (rendering, schema and settings checks), one subcommand each.
cat >"$work/checks.py" <<'PY'
import json, os, re, sys, tomllib
import yaml

def die(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)

# --- settings keys -----------------------------------------------------------------------------
# The keys olo accepts are the ones docs/settings.md (and docs/lakehouse.md for [lakehouse])
# documents.
def documented_keys():
    keys = {}
    for doc in ("docs/settings.md", "docs/lakehouse.md"):
        text = open(doc).read()
        for block in re.findall(r"```toml\n(.*?)```", text, re.S):
            section = None
            for line in block.splitlines():
                m = re.match(r"^\s*#?\s*\[\[?([a-z_.]+)\]\]?\s*(#.*)?$", line)
                if m:
                    section = m.group(1)
                    keys.setdefault(section, set())
                    continue
                m = re.match(r"^\s*#?\s*([a-z][a-z0-9_]*)\s*=", line)
                if m and section:
                    keys[section].add(m.group(1))
    return keys

def check_settings(toml_text, env_names, where):
    known = documented_keys()
    try:
        doc = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as e:
        die(f"{where}: not valid TOML: {e}")
    bad = []
    for section, table in doc.items():
        if section not in known:
            bad.append(f"[{section}]")
            continue
        for key, value in table.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                sub = f"{section}.{key}"
                for item in value:
                    bad += [f"{sub}.{k}" for k in item if k not in known.get(sub, set())]
            elif key not in known[section]:
                bad.append(f"{section}.{key}")
    for name in env_names:
        m = re.match(r"^OLO_([A-Z]+)__([A-Z_]+)$", name)
        if m:
            section, key = m.group(1).lower(), m.group(2).lower()
            if key not in known.get(section, set()) and f"{section}.{key}" not in known:
                bad.append(f"{name} ({section}.{key})")
    if bad:
        die(f"{where}: settings not in docs/settings.md: {', '.join(sorted(set(bad)))}")
    if doc.get("server", {}).get("listen", "").split(":")[0] != "0.0.0.0":
        die(f"{where}: server.listen must be 0.0.0.0:<port> in a container, got {doc.get('server')}")
    return doc

def olo_settings(toml_text, env, where):
    """The settings olo itself loads from `toml_text` and the `OLO_*` variables of `env` (the
    other variables are left out), as `olo serve` would at start; dies with olo's reason."""
    import subprocess, tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(toml_text)
    run_env = {"PATH": os.environ.get("PATH", "")}
    run_env.update({k: str(v) for k, v in env.items() if k.startswith("OLO_") and "__" in k})
    out = subprocess.run([os.environ["OLO_BIN"], "settings", "--config", f.name, "--format", "json"],
                         env=run_env, capture_output=True, text=True)
    os.unlink(f.name)
    if out.returncode != 0:
        die(f"{where}: olo refuses these settings: {out.stderr.strip()}")
    return json.loads(out.stdout)

def listen_port(settings):
    return int(settings["server"]["listen"].rsplit(":", 1)[1])

def url_port(text):
    """The port of the first http://host:port URL in `text`, or None."""
    m = re.search(r"https?://[^/:\s\"']+:(\d+)", text)
    return int(m.group(1)) if m else None

# --- compose -----------------------------------------------------------------------------------
def compose(config_file, env_example, compose_toml):
    cfg = yaml.safe_load(open(config_file))
    services = cfg["services"]
    problems = []
    for name, svc in services.items():
        image = svc.get("image", "")
        if "build" not in svc:
            tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
            if not tag or tag == "latest" or not re.search(r"\d", tag):
                problems.append(f"{name}: image {image!r} is not pinned to an exact version")
        for dep, cond in (svc.get("depends_on") or {}).items():
            if dep not in services:
                problems.append(f"{name}: depends on unknown service {dep}")
                continue
            c = cond.get("condition")
            if c == "service_healthy" and not services[dep].get("healthcheck"):
                problems.append(f"{name}: waits for {dep} to be healthy, but {dep} has no healthcheck")
            if c == "service_completed_successfully" and services[dep].get("restart", "no") != "no":
                problems.append(f"{name}: waits for {dep} to complete, but {dep} restarts")
        if svc.get("restart", "no") != "no" and not svc.get("healthcheck"):
            problems.append(f"{name}: a long-running service without a healthcheck")
        for port in svc.get("ports", []):
            ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
            if ip != "127.0.0.1":
                problems.append(f"{name}: port {port} is not bound to 127.0.0.1")
    # The variables the file uses are the ones .env.example defines.
    text = "\n".join(l for l in open("compose/docker-compose.yml").read().splitlines()
                     if not l.lstrip().startswith("#"))
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)\}", text))
    defined = {l.split("=", 1)[0] for l in open(env_example) if re.match(r"^[A-Z0-9_]+=", l)}
    if used - defined:
        problems.append(f"variables used but not in .env.example: {sorted(used - defined)}")
    if defined - used:
        problems.append(f".env.example defines unused variables: {sorted(defined - used)}")
    olo = services.get("olo") or die("compose: no olo service")
    env = olo.get("environment") or {}
    check_settings(open(compose_toml).read(), env.keys(), "compose/olo/olo.toml + olo's environment")
    loaded = olo_settings(open(compose_toml).read(), env, "compose/olo/olo.toml + olo's environment")
    port = listen_port(loaded)
    # "127.0.0.1:8081:8080/tcp" (docker-compose 1's config output) or {target: 8080, ...}.
    targets = [int(p["target"]) if isinstance(p, dict) else int(str(p).rsplit(":", 1)[-1].split("/")[0])
               for p in olo.get("ports", [])]
    if port not in targets:
        problems.append(f"olo listens on {port} (server.listen), but its published ports go to {targets}")
    probe = url_port(" ".join(map(str, (olo.get("healthcheck") or {}).get("test", []))))
    if probe != port:
        problems.append(f"olo's healthcheck asks port {probe}, but olo listens on {port}")
    for var in ("OLO_STATE__DATABASE", "OLO_AIRFLOW_PASSWORD", "OLO_GITHUB_WEBHOOK_SECRET", "OLO_API__TOKENS"):
        if var not in env:
            problems.append(f"olo: {var} not in its environment")
    if not str(env.get("OLO_STATE__DATABASE", "")).startswith("postgres://"):
        problems.append("olo: OLO_STATE__DATABASE is not a PostgreSQL URL")
    trino_mounts = [v["source"] if isinstance(v, dict) else v.split(":")[0] for v in services["trino"]["volumes"]]
    if "olo-trino" not in trino_mounts:
        problems.append("trino does not mount olo's rendered folder (volume olo-trino)")
    for svc in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor"):
        srcs = [v["source"] if isinstance(v, dict) else v.split(":")[0] for v in services[svc]["volumes"]]
        if "olo-dags" not in srcs:
            problems.append(f"{svc} does not mount olo's DAG folder (volume olo-dags)")
    if problems:
        die("compose: " + "; ".join(problems))
    print(f"{len(services)} services")

# --- chart -------------------------------------------------------------------------------------
def load_values(path):
    return yaml.safe_load(open(path)) if path != "-" else {}

def render(values_path, out_dir):
    import helm_python as helm
    values = load_values(values_path)
    with helm.Config(namespace="olo", storage_driver="memory") as cfg:
        rel = cfg.install("charts/olo", "olo", values, dry_run="client")
    os.makedirs(out_dir, exist_ok=True)
    open(os.path.join(out_dir, "manifest.yaml"), "w").write(rel["manifest"])
    open(os.path.join(out_dir, "NOTES.txt"), "w").write(rel.get("notes") or "")
    docs = [d for d in yaml.safe_load_all(rel["manifest"]) if d]
    for i, d in enumerate(docs):
        name = f"{i:02d}-{d['kind']}-{d['metadata']['name']}.yaml"
        with open(os.path.join(out_dir, name), "w") as f:
            yaml.safe_dump(d, f, sort_keys=False)
    if not rel.get("notes"):
        die("NOTES.txt rendered empty")
    print(" ".join(sorted(d["kind"] for d in docs)))

def render_must_fail(values_yaml, expected):
    import helm_python as helm
    values = yaml.safe_load(values_yaml)
    try:
        with helm.Config(namespace="olo", storage_driver="memory") as cfg:
            cfg.install("charts/olo", "olo", values, dry_run="client")
    except Exception as e:  # HelmReleaseError / HelmValuesError / HelmRenderError
        msg = " ".join(str(e).split())
        if expected not in msg:
            die(f"the render failed, but not with {expected!r}: {msg}")
        print(msg[:220])
        return
    die(f"the render of {values_yaml!r} succeeded; it must fail")

def lint(values_path):
    import helm_python as helm
    report = helm.lint("charts/olo", load_values(values_path), strict=True, namespace="olo",
                       kube_version=f"v{os.environ['KUBE_VERSION']}")
    msgs = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + \
           [{"error": e} for e in report.get("errors") or []]
    if msgs:
        die("helm lint: " + "; ".join(f"{m.get('path', '')} {m['error']}" for m in msgs))
    print(f"{report.get('total_charts_linted')} chart, no warnings")

def docs_of(out_dir):
    docs = {}
    for f in sorted(os.listdir(out_dir)):
        if f[:2].isdigit():
            d = yaml.safe_load(open(os.path.join(out_dir, f)))
            docs.setdefault(d["kind"], []).append(d)
    return docs

def chart_semantics(out_dir, ha):
    docs = docs_of(out_dir)
    dep = docs["Deployment"][0]
    pod = dep["spec"]["template"]
    c = pod["spec"]["containers"][0]
    problems = []
    if c["livenessProbe"]["httpGet"]["path"] != "/healthz":
        problems.append("liveness probe is not /healthz")
    if c["readinessProbe"]["httpGet"]["path"] != "/readyz":
        problems.append("readiness probe is not /readyz")
    if not c.get("resources", {}).get("requests"):
        problems.append("no resource requests")
    if not pod["spec"]["securityContext"].get("runAsNonRoot"):
        problems.append("pods may run as root")
    labels = pod["metadata"]["labels"]
    def selects(sel):
        return all(labels.get(k) == v for k, v in sel.items())
    svc = docs["Service"][0]
    if not selects(svc["spec"]["selector"]):
        problems.append("the Service does not select the pods")
    if not selects(dep["spec"]["selector"]["matchLabels"]):
        problems.append("the Deployment's selector does not match its pods")
    if "PodDisruptionBudget" not in docs or not selects(docs["PodDisruptionBudget"][0]["spec"]["selector"]["matchLabels"]):
        problems.append("no PodDisruptionBudget selecting the pods")
    cm = docs["ConfigMap"][0]["data"]["olo.toml"]
    env = {e["name"]: e for e in c.get("env", [])}
    secret_keys = set((docs.get("Secret") or [{"data": {}}])[0]["data"])
    for name, e in env.items():
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref and ref["name"] == docs.get("Secret", [{"metadata": {"name": None}}])[0]["metadata"]["name"] \
                and ref["key"] not in secret_keys:
            problems.append(f"env {name} refers to a key the chart's Secret does not have")
    settings = check_settings(cm, env.keys(), f"ConfigMap olo.toml ({'HA' if ha else 'default'} values)")
    # olo loads it with the pod's environment (a value from a Secret stands in as a placeholder).
    pod_env = {n: e.get("value", "postgres://olo@db/olo" if "DATABASE" in n else "from-a-secret")
               for n, e in env.items()}
    port = listen_port(olo_settings(cm, pod_env, f"ConfigMap olo.toml ({'HA' if ha else 'default'} values)"))
    named = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    def resolve(ref):
        return ref if isinstance(ref, int) else named.get(ref)
    if port not in named.values():
        problems.append(f"olo listens on {port} (server.listen), but the container ports are {named}")
    for probe in ("livenessProbe", "readinessProbe"):
        ref = c[probe]["httpGet"]["port"]
        if resolve(ref) is None:
            problems.append(f"{probe} asks port {ref!r}, which the container does not have")
        elif resolve(ref) != port:
            problems.append(f"{probe} asks port {resolve(ref)}, but olo listens on {port}")
    for sp in svc["spec"]["ports"]:
        if resolve(sp.get("targetPort", sp["port"])) != port:
            problems.append(f"the Service's port {sp.get('name')} goes to {sp.get('targetPort')}, not to olo's {port}")
    # Every *_env setting names a variable the pod has.
    def env_refs(d, path=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from env_refs(v, f"{path}{k}.")
            elif k.endswith("_env") and isinstance(v, str):
                yield f"{path}{k}", v
    for key, var in env_refs(settings):
        if var not in env and var not in ("OLO_S3_ACCESS_KEY", "OLO_S3_SECRET_KEY"):
            problems.append(f"{key} names {var}, which the pod does not have")
    if ha:
        if dep["spec"]["replicas"] != 3:
            problems.append("HA values: replicas is not 3")
        db = env.get("OLO_STATE__DATABASE", {}).get("valueFrom", {}).get("secretKeyRef")
        if not db:
            problems.append("HA values: OLO_STATE__DATABASE does not come from a Secret")
        if "oidc" not in settings:
            problems.append("HA values: no [oidc] in olo.toml")
        if settings.get("api", {}).get("read_requires_token") is not True:
            problems.append("HA values: api.read_requires_token is not true")
        if settings.get("oidc", {}).get("client_secret_env") != "OLO_OIDC_CLIENT_SECRET":
            problems.append("HA values: oidc.client_secret_env is not OLO_OIDC_CLIENT_SECRET")
        for key in ("OLO_STATE__DATABASE", "OLO_OIDC_CLIENT_SECRET", "OLO_GITHUB_WEBHOOK_SECRET", "OLO_AIRFLOW_PASSWORD"):
            if key not in secret_keys:
                problems.append(f"HA values: the Secret has no {key}")
        ing = docs.get("Ingress") or [None]
        if not ing[0] or ing[0]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] != svc["metadata"]["name"]:
            problems.append("HA values: no Ingress to the Service")
        sm = (docs.get("ServiceMonitor") or [None])[0]
        if not sm:
            problems.append("HA values: no ServiceMonitor")
        else:
            ep = sm["spec"]["endpoints"][0]
            ports = {p["name"] for p in svc["spec"]["ports"]}
            if ep["path"] != "/metrics" or ep["port"] not in ports:
                problems.append("ServiceMonitor: not /metrics on a port of the Service")
            if not all(svc["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items()):
                problems.append("ServiceMonitor: its selector does not match the Service")
            for key in ("apiVersion", "kind", "metadata", "spec"):
                if key not in sm:
                    problems.append(f"ServiceMonitor: no {key}")
            if sm["apiVersion"] != "monitoring.coreos.com/v1":
                problems.append("ServiceMonitor: apiVersion is not monitoring.coreos.com/v1")
    if problems:
        die("; ".join(problems))
    kinds = ", ".join(sorted(docs))
    print(kinds)

if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"compose": compose, "render": render, "render-must-fail": render_must_fail,
     "lint": lint, "chart-semantics": lambda d, ha: chart_semantics(d, ha == "ha"),
     "settings": lambda f, where: check_settings(open(f).read(), [], where),
     "olo-settings": lambda f, where: print(listen_port(olo_settings(open(f).read(), {}, where)))}[cmd](*args)
PY
export KUBE_VERSION="$kube_version"
checks_py() { "$py" "$work/checks.py" "$@"; }

# --- YAML style ----------------------------------------------------------------------------------
yaml_files=(compose/docker-compose.yml charts/olo/Chart.yaml charts/olo/values.yaml charts/olo/ci/*.yaml .yamllint)
"$venv/bin/yamllint" --strict -c .yamllint "${yaml_files[@]}" || fail "yamllint found problems"
ok "yamllint (.yamllint, strict): ${yaml_files[*]}"

# --- compose -------------------------------------------------------------------------------------
if ! docker-compose --project-directory compose --env-file compose/.env.example \
    -f compose/docker-compose.yml config >"$work/compose.yml" 2>"$work/compose.err"; then
    cat "$work/compose.err" >&2
    fail "docker-compose config refused compose/docker-compose.yml"
fi
if grep -qi "warn" "$work/compose.err"; then
    cat "$work/compose.err" >&2
    fail "docker-compose config warned (an unset variable?)"
fi
ok "docker-compose config: compose/docker-compose.yml is a valid Compose file with compose/.env.example (no warnings)"

out="$(checks_py compose "$work/compose.yml" compose/.env.example compose/olo/olo.toml)" || fail "compose checks"
ok "compose: $out; olo loads its settings (olo settings) and listens on the port its healthcheck and published port use; images pinned, a healthcheck behind every service_healthy, one-shot services behind service_completed_successfully, ports on 127.0.0.1, variables = .env.example, olo's settings keys documented, DAG and Trino folders shared"

# Negative: a settings value olo refuses, and a listen port the health check does not ask.
sed 's/^poll_seconds = 30$/poll_seconds = "thirty"/' compose/olo/olo.toml >"$work/thirty.toml"
grep -q '"thirty"' "$work/thirty.toml" || fail "could not make the poll_seconds negative check (compose/olo/olo.toml changed?)"
if out="$(checks_py compose "$work/compose.yml" compose/.env.example "$work/thirty.toml" 2>&1)"; then
    fail "compose checks accepted poll_seconds = \"thirty\""
fi
grep -q "olo refuses these settings" <<<"$out" || fail "poll_seconds = \"thirty\" failed for another reason: $out"
ok "olo refuses compose's olo.toml with poll_seconds = \"thirty\": $(grep -o 'invalid type[^;]*' <<<"$out" | head -n 1 | cut -c1-90)"
sed 's/^listen = "0.0.0.0:8080"$/listen = "0.0.0.0:9090"/' compose/olo/olo.toml >"$work/9090.toml"
if out="$(checks_py compose "$work/compose.yml" compose/.env.example "$work/9090.toml" 2>&1)"; then
    fail "compose checks accepted olo listening on 9090 behind a health check on 8080"
fi
grep -q "healthcheck asks port 8080, but olo listens on 9090" <<<"$out" || fail "listen 9090 failed for another reason: $out"
ok "compose checks refuse olo listening on 9090 while its healthcheck and published port use 8080"

# Negative: the validator refuses a broken file (an unknown depends_on condition).
mkdir -p "$work/badcompose"
cp -r compose/. "$work/badcompose/"
sed -i '0,/condition: service_healthy/s//condition: service_ready/' "$work/badcompose/docker-compose.yml"
if docker-compose --project-directory "$work/badcompose" --env-file "$work/badcompose/.env.example" \
    -f "$work/badcompose/docker-compose.yml" config -q >/dev/null 2>"$work/badcompose.err"; then
    fail "docker-compose config accepted depends_on condition 'service_ready'"
fi
ok "docker-compose config refuses a broken file (depends_on condition: service_ready): $(grep -m1 -o 'service_ready.*' "$work/badcompose.err" | cut -c1-80)"

# --- Dockerfile (static: no engine here, nothing is built) -------------------------------------
dockerfile_problems=()
grep -Eq '^ARG RUST_VERSION=1\.95(\.[0-9]+)?$' Dockerfile || dockerfile_problems+=("Rust toolchain is not 1.95")
grep -q 'cargo build --release --locked' Dockerfile || dockerfile_problems+=("no cargo build --release --locked")
[ "$(grep -c '^FROM ' Dockerfile)" -ge 2 ] || dockerfile_problems+=("not multi-stage")
grep -Eq '^USER [1-9][0-9]*' Dockerfile || dockerfile_problems+=("does not switch to a non-root user")
grep -q '^HEALTHCHECK' Dockerfile || dockerfile_problems+=("no HEALTHCHECK")
grep -q '^COPY examples-repo ' Dockerfile || dockerfile_problems+=("examples-repo not bundled")
grep -q 'listen = "0.0.0.0:' Dockerfile || dockerfile_problems+=("the image's olo.toml does not listen on 0.0.0.0")
grep -qx 'ENV MIMALLOC_ALLOW_THP=0' Dockerfile || dockerfile_problems+=("MIMALLOC_ALLOW_THP=0 is not set (docs/deployment.md)")
for p in target/ .olo/; do
    grep -qx "$p" .dockerignore || dockerfile_problems+=(".dockerignore does not exclude $p")
done
if ((${#dockerfile_problems[@]})); then
    fail "Dockerfile: ${dockerfile_problems[*]}"
fi
awk '/^COPY <<.EOF. \/etc\/olo\/olo.toml/{f=1;next} /^EOF$/{f=0} f' Dockerfile >"$work/image-olo.toml"
[ -s "$work/image-olo.toml" ] || fail "Dockerfile: no olo.toml heredoc for /etc/olo/olo.toml"
checks_py settings "$work/image-olo.toml" "the image's /etc/olo/olo.toml" || fail "the image's olo.toml"
image_port="$(checks_py olo-settings "$work/image-olo.toml" "the image's /etc/olo/olo.toml")" || fail "olo refuses the image's olo.toml"
# The HEALTHCHECK instruction with its continuation lines.
healthcheck="$(awk '/^HEALTHCHECK/{f=1} f{printf "%s ", $0; if ($0 !~ /\\$/) exit}' Dockerfile)"
grep -Eq "(localhost|127\.0\.0\.1):$image_port/" <<<"$healthcheck" || dockerfile_problems+=("HEALTHCHECK does not ask port $image_port, where the image's olo.toml listens")
grep -Eq "^EXPOSE $image_port\b" Dockerfile || dockerfile_problems+=("EXPOSE does not name port $image_port, where the image's olo.toml listens")
if ((${#dockerfile_problems[@]})); then
    fail "Dockerfile: ${dockerfile_problems[*]}"
fi
ok "Dockerfile (static): multi-stage, rust 1.95, cargo build --release --locked, non-root USER, HEALTHCHECK and EXPOSE on the port its olo.toml listens on ($image_port; olo loads that file), examples-repo bundled, its olo.toml keys documented and listening on 0.0.0.0, no transparent huge pages; .dockerignore excludes target/ and .olo/"

# --- Helm chart ------------------------------------------------------------------------------------
out="$(checks_py lint -)" || fail "helm lint with the default values"
ok "helm lint --strict (Helm SDK, kube $kube_version), default values: $out"
out="$(checks_py lint charts/olo/ci/ha-values.yaml)" || fail "helm lint with charts/olo/ci/ha-values.yaml"
ok "helm lint --strict, charts/olo/ci/ha-values.yaml: $out"

out="$(checks_py render - "$work/default")" || fail "rendering the chart with the default values"
ok "helm install --dry-run=client, default values (values.schema.json applied): $out"
out="$(checks_py render charts/olo/ci/ha-values.yaml "$work/ha")" || fail "rendering the chart with ci/ha-values.yaml"
ok "helm install --dry-run=client, ci/ha-values.yaml (3 replicas, PostgreSQL, OIDC, ingress, ServiceMonitor): $out"

for set in default ha; do
    files=()
    for f in "$work/$set"/[0-9]*.yaml; do
        # ServiceMonitor is a CRD (monitoring.coreos.com/v1) whose schema ships with the Prometheus
        # Operator, not with Kubernetes: kubernetes-validate has no schema for it. Its shape is
        # checked by chart-semantics below instead.
        case "$f" in *-ServiceMonitor-*) continue ;; esac
        files+=("$f")
    done
    if ! "$venv/bin/kubernetes-validate" --strict --quiet -k "$kube_version" "${files[@]}" >"$work/kv-$set.log" 2>&1; then
        cat "$work/kv-$set.log" >&2
        fail "kubernetes-validate refused the manifests rendered with the $set values"
    fi
    ok "kubernetes-validate --strict -k $kube_version: ${#files[@]} manifests of the $set values$([ "$set" = ha ] && echo " (ServiceMonitor skipped: a CRD, no schema offline; its fields are checked next)")"
    out="$(checks_py chart-semantics "$work/$set" "$set")" || fail "the $set manifests"
    ok "chart semantics ($set): olo loads its settings with the pod's environment and listens on the container port its probes and Service use, probes /healthz + /readyz, requests, non-root, selectors, PDB, every *_env setting backed by an env var, olo.toml keys documented, listen 0.0.0.0$([ "$set" = ha ] && echo ", 3 replicas, database from the Secret, [oidc], reads behind sign-in, Ingress, ServiceMonitor on /metrics"): $out"
done

# Negative: a probe on a port the container does not have.
cp -r "$work/default" "$work/badprobe"
sed -i '0,/port: http$/s//port: htp/' "$work/badprobe/"*-Deployment-*.yaml
grep -q "port: htp" "$work/badprobe/"*-Deployment-*.yaml || fail "could not make the probe-port negative check (the probes do not name port http?)"
if out="$(checks_py chart-semantics "$work/badprobe" default 2>&1)"; then
    fail "chart semantics accepted a probe on port htp"
fi
grep -q "asks port 'htp', which the container does not have" <<<"$out" || fail "the htp probe failed for another reason: $out"
ok "chart semantics refuse a probe on a port the container does not have (htp)"

# Negative: kubernetes-validate refuses a manifest with a misspelt field.
sed 's/^  replicas:/  replicaz:/' "$work/ha/"*-Deployment-*.yaml >"$work/bad-deployment.yaml"
if "$venv/bin/kubernetes-validate" --strict --quiet -k "$kube_version" "$work/bad-deployment.yaml" >"$work/bad-deployment.log" 2>&1; then
    fail "kubernetes-validate accepted a Deployment with spec.replicaz"
fi
grep -q "replicaz" "$work/bad-deployment.log" || { cat "$work/bad-deployment.log" >&2; fail "kubernetes-validate failed on the bad Deployment, but not because of spec.replicaz"; }
ok "kubernetes-validate refuses a Deployment with a misspelt field: $(grep -m1 -o "[^:]*replicaz.*" "$work/bad-deployment.log" | cut -c1-100)"

# Negative: values.schema.json and the chart's own checks stop bad values at install time.
out="$(checks_py render-must-fail 'replicaCount: three' "at '/replicaCount': got string, want integer")" \
    || fail "replicaCount: \"three\" must fail the render"
ok "values.schema.json refuses replicaCount: \"three\": $out"
out="$(checks_py render-must-fail '{replicas: 3}' "additional properties 'replicas' not allowed")" \
    || fail "an unknown key must fail the render"
ok "values.schema.json refuses an unknown key (replicas): $out"
out="$(checks_py render-must-fail '{oidc: {enabled: true}}' "at '/oidc/issuer'")" \
    || fail "oidc.enabled without issuer and clientId must fail the render"
ok "values.schema.json refuses oidc.enabled without issuer/clientId: $out"
out="$(checks_py render-must-fail 'replicaCount: 3' "state.database must be a PostgreSQL URL")" \
    || fail "replicaCount 3 without PostgreSQL must fail the render"
ok "the chart refuses replicaCount: 3 without PostgreSQL: $out"
out="$(checks_py render-must-fail '{replicaCount: 3, postgresql: {url: "sqlite:/var/lib/olo/state.db"}}' "at '/postgresql/url'")" \
    || fail "replicaCount 3 with a SQLite URL must fail the render"
ok "the chart refuses a non-PostgreSQL postgresql.url: $out"

echo "check-deploy: $checks checks passed in $((SECONDS - started)) s"
