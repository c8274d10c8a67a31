"""Prints the Markdown summary of one scripts/bench.sh run (the tables of BENCHMARKS.md).

    python3 bench/summary.py RESULTS_DIR

RESULTS_DIR holds what scripts/bench.sh wrote: hyperfine JSON exports, olo-bench's and
airflow_parse.py's JSON, peak RSS files (KiB, from /usr/bin/time) and machine.txt. The peers'
published figures below are copied from the anchors (measured elsewhere, not by this run).
"""

import json
import os
import sys

# Figures of the peers as published in the anchors (2-core machine, another day): context only.
ANCHOR = {
    "cjs_default_s": 91.4,
    "cjs_clib_s": 27.4,
    "cjs_mib": 54,
    "py_jsonschema_only_s": 8.3,
    "git_cat_file_s": 0.08,
    "cat_s": 0.10,
    "pyyaml_c_s": 6.1,
    "af_static_slope_ms": 4.1,
    "af_df_slope_ms": 11.9,
    "af_static_process_s": 3.17,
    "af_df_process_s": 5.50,
    "af_fixed_s": 1.93,
    "af_static_mib": 135,
    "af_df_mib": 139,
}


def main():
    res = sys.argv[1]

    def load(name):
        with open(os.path.join(res, name)) as f:
            return json.load(f)

    def text(name):
        with open(os.path.join(res, name)) as f:
            return f.read().strip()

    def hf(name, command=None):
        """Median seconds of a hyperfine export (of one named command)."""
        results = load(name)["results"]
        if command is not None:
            results = [r for r in results if r["command"] == command]
        return results[0]["median"]

    def mib(name):
        return int(text(name)) / 1024

    def verdict(ok):
        return "met" if ok else "**missed**"

    machine = text("machine.txt")
    bench = load("olo_bench.json")
    validate_s = hf("olo_validate.json")
    validate_mib = mib("olo_validate.rss")
    cjs_files = int(text("cjs.files"))
    cjs_s = hf("cjs.json")
    cjs_mib = mib("cjs.rss")
    extrapolated = cjs_files != bench["jobs"]
    if extrapolated:
        cjs_s *= bench["jobs"] / cjs_files
    render_s = hf("olo_render_tmpfs.json")
    render_disk_s = hf("olo_render_disk.json")
    render_mib = mib("olo_render.rss")
    af = load("airflow.json")
    proc = {k: hf("airflow_process.json", k) for k in ("empty", "olo", "dag-factory")}
    af_mib = {k: mib(f"airflow_{k}.rss") for k in ("empty", "olo", "dag-factory")}
    n_dags = af["dags"]
    proc_slope = {k: (proc[k] - proc["empty"]) / n_dags * 1000 for k in ("olo", "dag-factory")}

    def m(key):
        return bench[key]["median"]

    out = []
    p = out.append
    p("Machine and versions:\n")
    p("```")
    p(machine)
    p("```\n")
    p(
        f"### 1. Validate a generated repository of {bench['jobs']:,} jobs "
        f"({bench['workspaces']} workspaces, {bench['files']:,} files, {bench['bytes'] / 1e6:.1f} MB)\n"
    )
    cjs_note = (
        f"measured on {cjs_files:,} files, ×{bench['jobs'] // cjs_files} (extrapolated)"
        if extrapolated
        else f"all {cjs_files:,} job files, one invocation"
    )
    p("| | olo (this run) | check-jsonschema 0.39.0 + ruamel.yaml.clib (this run) | anchors (published, not this run) | target |")
    p("|---|---|---|---|---|")
    p(
        f"| wall time, `olo validate DIR` (whole process) | **{validate_s:.3f} s** | {cjs_s:.1f} s ({cjs_note}): "
        f"olo **{cjs_s / validate_s:.0f}× faster** | check-jsonschema {ANCHOR['cjs_clib_s']} s with clib, "
        f"{ANCHOR['cjs_default_s']} s default install | < 1 s: {verdict(validate_s < 1)} |"
    )
    p(
        f"| peak RSS | **{validate_mib:.0f} MiB** ({validate_mib * 1.048576:.0f} MB) | {cjs_mib:.0f} MiB | "
        f"{ANCHOR['cjs_mib']} MiB | < 300 MB: {verdict(validate_mib * 1.048576 < 300)} |"
    )
    p(
        f"| in-process: read the working tree (`from_worktree`) | {m('read'):.3f} s | | floor: `cat` {ANCHOR['cat_s']} s, "
        f"`git cat-file --batch-all-objects` {ANCHOR['git_cat_file_s']} s; PyYAML C loader {ANCHOR['pyyaml_c_s']} s | |"
    )
    p(
        f"| in-process: validate (YAML, JSON Schema, semantic checks) | {m('validate'):.3f} s | | Python `jsonschema`, "
        f"validation only ~{ANCHOR['py_jsonschema_only_s']} s | |"
    )
    p(f"| in-process: read + validate | {m('read+validate'):.3f} s | | | |")
    h = bench["heap_bytes"]
    p(
        f"| heap (counting allocator, one run): after read / peak during validate / after validate | "
        f"{h['snapshot_live'] / 1e6:.0f} / {h['validate_peak'] / 1e6:.0f} / {h['validated_live'] / 1e6:.0f} MB | | | |"
    )
    p("")
    p(f"### 2. Render the same {bench['jobs']:,}-job repository ({bench['rendered_files']:,} files written)\n")
    p("| | olo (this run) | target |")
    p("|---|---|---|")
    p(f"| in-process: render only | {m('render'):.3f} s | |")
    p(f"| in-process: validate + render | **{m('validate+render'):.3f} s** | < 2 s: {verdict(m('validate+render') < 2)} |")
    p(f"| in-process: read + validate + render | {m('read+validate+render'):.3f} s | |")
    p(
        f"| `olo render DIR --out OUT`, whole process, OUT on tmpfs (no fsync cost) | **{render_s:.3f} s** | "
        f"< 2 s: {verdict(render_s < 2)} |"
    )
    p(
        f"| `olo render DIR --out OUT`, whole process, OUT on the disk (one fsync per file) | **{render_disk_s:.2f} s** | "
        f"< 2 s: {verdict(render_disk_s < 2)} |"
    )
    p(f"| peak RSS of `olo render` | {render_mib:.0f} MiB | |")
    p("")
    p(
        f"### 3. Airflow parse cost: {n_dags} olo DAG files vs the same {n_dags} jobs for dag-factory "
        f"({af['tasks']:,} BashOperator tasks; equal task by task, zero import errors)\n"
    )
    ratio = af["ratio"]
    p("| | olo DAG files (this run) | dag-factory 1.1.0 (this run) | anchors (published): static `.py` / dag-factory | target |")
    p("|---|---|---|---|---|")
    p(
        f"| **per-DAG parse cost** (in one process, after `import airflow`; median of {af['runs']}) | "
        f"**{af['per_dag_ms']['olo']:.2f} ms** | {af['per_dag_ms']['dag_factory']:.2f} ms: olo **{ratio:.2f}× faster** | "
        f"{ANCHOR['af_static_slope_ms']} ms / {ANCHOR['af_df_slope_ms']} ms "
        f"({ANCHOR['af_df_slope_ms'] / ANCHOR['af_static_slope_ms']:.1f}×) | ≥ 3×: {verdict(ratio >= 3)} |"
    )
    p(
        f"| per-DAG slope from whole processes ((folder − empty) / {n_dags}) | {proc_slope['olo']:.2f} ms | "
        f"{proc_slope['dag-factory']:.2f} ms ({proc_slope['dag-factory'] / proc_slope['olo']:.2f}×) | same as above | |"
    )
    p(
        f"| whole process: python + `import airflow` + parse {n_dags} | {proc['olo']:.2f} s | {proc['dag-factory']:.2f} s | "
        f"{ANCHOR['af_static_process_s']} s / {ANCHOR['af_df_process_s']} s | |"
    )
    p(f"| fixed part: same on an empty folder | {proc['empty']:.2f} s | {proc['empty']:.2f} s | {ANCHOR['af_fixed_s']} s | |")
    p(
        f"| peak memory (whole process) | {af_mib['olo']:.0f} MiB | {af_mib['dag-factory']:.0f} MiB | "
        f"{ANCHOR['af_static_mib']} MiB / {ANCHOR['af_df_mib']} MiB | |"
    )
    print("\n".join(out))


if __name__ == "__main__":
    main()
