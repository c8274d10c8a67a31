//! The generated Trino `rules.json` (file-based access control) read with Trino's rule semantics,
//! against a table of who-may-do-what cases on the example repository. A real Trino 476 applies
//! the same rules in `tests/trino_e2e.rs`; this evaluator stays as the quick check of many cases
//! (names built to slip through unquoted patterns included) that needs no Trino. It follows
//! Trino's documented semantics: for catalogs, schemas, tables, queries and procedures alike the
//! first rule whose `user`, `group` and object patterns all match decides (patterns are regular
//! expressions matched against the whole name; an absent pattern matches everything); no matching
//! rule means no access; table access also needs catalog access, and writes a catalog access
//! other than `read-only`.

use olo_schema::Repo;
use regex::Regex;
use serde_json::Value;

fn example() -> Repo {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-repo");
    let snapshot = olo_reconciler::snapshot::from_worktree(&root).unwrap();
    olo_schema::validate(snapshot)
        .repo
        .expect("the example is valid")
}

struct Who<'a> {
    user: &'a str,
    groups: &'a [&'a str],
}

fn whole(pattern: Option<&Value>, text: &str) -> bool {
    match pattern.and_then(Value::as_str) {
        None => true,
        Some(p) => Regex::new(&format!("^(?:{p})$")).unwrap().is_match(text),
    }
}

fn principal_matches(rule: &Value, who: &Who) -> bool {
    whole(rule.get("user"), who.user)
        && match rule.get("group") {
            None => true,
            Some(_) => who.groups.iter().any(|g| whole(rule.get("group"), g)),
        }
}

fn first<'a>(
    rules: &'a Value,
    kind: &str,
    who: &Who,
    objects: &[(&str, &str)],
) -> Option<&'a Value> {
    rules[kind].as_array().unwrap().iter().find(|r| {
        principal_matches(r, who) && objects.iter().all(|(key, name)| whole(r.get(*key), name))
    })
}

fn catalog_access(rules: &Value, who: &Who, catalog: &str) -> String {
    first(rules, "catalogs", who, &[("catalog", catalog)])
        .and_then(|r| r["allow"].as_str())
        .unwrap_or("none")
        .to_string()
}

/// Whether `who` holds `privilege` on `catalog.schema.table`.
fn may(
    rules: &Value,
    who: &Who,
    privilege: &str,
    catalog: &str,
    schema: &str,
    table: &str,
) -> bool {
    let writes = privilege != "SELECT";
    match catalog_access(rules, who, catalog).as_str() {
        "none" => return false,
        "read-only" if writes => return false,
        _ => {}
    }
    first(
        rules,
        "tables",
        who,
        &[("catalog", catalog), ("schema", schema), ("table", table)],
    )
    .and_then(|r| r["privileges"].as_array())
    .is_some_and(|p| p.iter().any(|x| x == privilege))
}

fn owns(rules: &Value, who: &Who, catalog: &str, schema: &str) -> bool {
    catalog_access(rules, who, catalog) != "none"
        && first(
            rules,
            "schemas",
            who,
            &[("catalog", catalog), ("schema", schema)],
        )
        .and_then(|r| r["owner"].as_bool())
        .unwrap_or(false)
}

#[test]
fn who_may_do_what_under_the_generated_rules() {
    let rules = olo_templates::trino::rules(&example(), &olo_templates::RenderSettings::default());
    let alice = Who {
        user: "alice@example.com",
        groups: &[],
    }; // platform admin (user:)
    let platform = Who {
        user: "pat",
        groups: &["data-platform"],
    }; // platform admin (group:)
    let sales_eng = Who {
        user: "sam",
        groups: &["sales-eng"],
    }; // sales operator
    let oncall = Who {
        user: "oncall-sales@example.com",
        groups: &[],
    }; // sales operator (user:)
    let analyst = Who {
        user: "ann",
        groups: &["analysts"],
    }; // sales + marketing viewer
    let marketing_eng = Who {
        user: "mo",
        groups: &["marketing-eng"],
    }; // sales viewer, marketing operator
    let nobody = Who {
        user: "eve",
        groups: &["interns"],
    };
    // Names built to slip through a pattern that is not quoted and anchored.
    let lookalike = Who {
        user: "alice@example.comX",
        groups: &["data-platformers"],
    };
    let dotted = Who {
        user: "aliceXexample.com",
        groups: &[],
    };

    // (who, privilege, catalog, schema, table, allowed)
    let cases: Vec<(&Who, &str, &str, &str, &str, bool)> = vec![
        (&alice, "SELECT", "lake", "sales.gold", "revenue", true),
        (
            &alice,
            "OWNERSHIP",
            "ops",
            "platform.maintenance",
            "jobs",
            true,
        ),
        (&platform, "DELETE", "lake", "marketing.raw", "events", true),
        (&sales_eng, "INSERT", "lake", "sales.silver", "orders", true),
        (&sales_eng, "DELETE", "lake", "sales.bronze", "orders", true),
        // Operators own the workspace's tables: dbt's `table` materialization creates, renames
        // and drops them.
        (
            &sales_eng,
            "OWNERSHIP",
            "lake",
            "sales.bronze",
            "orders",
            true,
        ),
        (
            &sales_eng,
            "OWNERSHIP",
            "lake",
            "marketing.raw",
            "events",
            false,
        ),
        (
            &analyst,
            "OWNERSHIP",
            "lake",
            "sales.gold",
            "revenue",
            false,
        ),
        // Trino's `system` metadata, for everyone (BI tools read it over JDBC); never writable.
        (&nobody, "SELECT", "system", "jdbc", "tables", true),
        (&nobody, "SELECT", "system", "metadata", "catalogs", true),
        (
            &nobody,
            "SELECT",
            "system",
            "information_schema",
            "schemata",
            true,
        ),
        (&sales_eng, "SELECT", "system", "runtime", "queries", true),
        (&nobody, "INSERT", "system", "jdbc", "tables", false),
        (
            &sales_eng,
            "SELECT",
            "lake",
            "marketing.raw",
            "events",
            false,
        ),
        (&sales_eng, "SELECT", "lake", "sales.scratch", "t", false), // not a declared namespace
        (&oncall, "UPDATE", "lake", "sales.silver", "customers", true),
        (&analyst, "SELECT", "lake", "sales.gold", "revenue", true),
        (&analyst, "INSERT", "lake", "sales.gold", "revenue", false),
        (
            &analyst,
            "SELECT",
            "lake",
            "marketing.curated",
            "campaigns",
            true,
        ),
        (
            &analyst,
            "SELECT",
            "ops",
            "platform.maintenance",
            "jobs",
            false,
        ),
        (
            &marketing_eng,
            "SELECT",
            "lake",
            "sales.gold",
            "revenue",
            true,
        ),
        (
            &marketing_eng,
            "INSERT",
            "lake",
            "sales.gold",
            "revenue",
            false,
        ),
        (
            &marketing_eng,
            "INSERT",
            "lake",
            "marketing.raw",
            "events",
            true,
        ),
        (&nobody, "SELECT", "lake", "sales.gold", "revenue", false),
        (&lookalike, "SELECT", "lake", "sales.gold", "revenue", false),
        (&dotted, "SELECT", "lake", "sales.gold", "revenue", false),
    ];
    let mut wrong = Vec::new();
    for (who, privilege, catalog, schema, table, allowed) in &cases {
        if may(&rules, who, privilege, catalog, schema, table) != *allowed {
            wrong.push(format!(
                "{} {:?} {privilege} {catalog}.{schema}.{table}: expected {allowed}",
                who.user, who.groups
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Schema ownership: workspace admins and platform admins own the workspace's schemas.
    assert!(owns(&rules, &platform, "lake", "sales.bronze"));
    assert!(!owns(&rules, &sales_eng, "lake", "sales.bronze"));
    assert!(!owns(&rules, &nobody, "lake", "sales.bronze"));
    // Catalog access: none for people no workspace names.
    assert_eq!(catalog_access(&rules, &nobody, "lake"), "none");
    assert_eq!(catalog_access(&rules, &analyst, "lake"), "all");
    assert_eq!(catalog_access(&rules, &nobody, "system"), "read-only");
    assert_eq!(catalog_access(&rules, &platform, "system"), "all");
}

/// The allowed query actions of `who` on queries of `owner` (Trino's query rules: the first rule
/// whose `user`, `group` and `queryOwner` match decides; users always see and kill their own).
fn query_access(rules: &Value, who: &Who, owner: &str) -> Vec<String> {
    let mut allowed: Vec<String> = first(rules, "queries", who, &[("queryOwner", owner)])
        .and_then(|r| r["allow"].as_array())
        .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    if who.user == owner {
        allowed.extend(["view".to_string(), "kill".to_string()]);
    }
    allowed.sort();
    allowed.dedup();
    allowed
}

fn may_call(rules: &Value, who: &Who, catalog: &str, schema: &str, procedure: &str) -> bool {
    first(
        rules,
        "procedures",
        who,
        &[
            ("catalog", catalog),
            ("schema", schema),
            ("procedure", procedure),
        ],
    )
    .and_then(|r| r["privileges"].as_array())
    .is_some_and(|p| p.iter().any(|x| x == "EXECUTE"))
}

#[test]
fn everyone_runs_and_kills_their_own_queries_and_platform_admins_all() {
    let rules = olo_templates::trino::rules(&example(), &olo_templates::RenderSettings::default());
    let admin = Who {
        user: "pat",
        groups: &["data-platform"],
    };
    let analyst = Who {
        user: "ann",
        groups: &["analysts"],
    };
    let nobody = Who {
        user: "eve",
        groups: &[],
    };
    assert_eq!(
        query_access(&rules, &admin, "ann"),
        ["execute", "kill", "view"]
    );
    assert_eq!(query_access(&rules, &analyst, "pat"), ["execute"]);
    assert_eq!(
        query_access(&rules, &analyst, "ann"),
        ["execute", "kill", "view"]
    );
    assert_eq!(query_access(&rules, &nobody, "ann"), ["execute"]);
    // kill_query is callable by everyone (it then checks the query rules above); other
    // procedures by platform admins only.
    assert!(may_call(&rules, &nobody, "system", "runtime", "kill_query"));
    assert!(!may_call(
        &rules,
        &nobody,
        "lake",
        "system",
        "rollback_to_snapshot"
    ));
    assert!(may_call(
        &rules,
        &admin,
        "lake",
        "system",
        "rollback_to_snapshot"
    ));
}

#[test]
fn the_airflow_task_user_works_in_every_workspace_and_only_there() {
    let settings = olo_templates::RenderSettings {
        trino_task_user: Some("airflow".into()),
        ..Default::default()
    };
    let rules = olo_templates::trino::rules(&example(), &settings);
    let airflow = Who {
        user: "airflow",
        groups: &[],
    };
    let cases = [
        ("INSERT", "lake", "sales.silver", "orders", true),
        ("OWNERSHIP", "lake", "sales.gold", "revenue", true),
        ("SELECT", "lake", "sales.gold", "revenue", true),
        ("DELETE", "lake", "marketing.curated", "campaigns", true),
        ("OWNERSHIP", "ops", "platform.maintenance", "jobs", true),
        ("GRANT_SELECT", "lake", "sales.gold", "revenue", false),
        ("SELECT", "lake", "sales.scratch", "t", false),
        ("SELECT", "other", "sales.gold", "revenue", false),
    ];
    for (privilege, catalog, schema, table, allowed) in cases {
        assert_eq!(
            may(&rules, &airflow, privilege, catalog, schema, table),
            allowed,
            "airflow {privilege} {catalog}.{schema}.{table}"
        );
    }
    assert!(!owns(&rules, &airflow, "lake", "sales.bronze"));
    // Without the setting the user is nobody.
    let plain = olo_templates::trino::rules(&example(), &olo_templates::RenderSettings::default());
    assert!(!may(
        &plain,
        &airflow,
        "SELECT",
        "lake",
        "sales.gold",
        "revenue"
    ));
    assert_eq!(catalog_access(&plain, &airflow, "lake"), "none");
}

#[test]
fn the_catalog_manager_manages_catalogs_and_reads_no_data() {
    let settings = olo_templates::RenderSettings {
        trino_catalog_manager: Some("olo".into()),
        ..Default::default()
    };
    let rules = olo_templates::trino::rules(&example(), &settings);
    let olo = Who {
        user: "olo",
        groups: &[],
    };
    assert_eq!(catalog_access(&rules, &olo, "lake"), "owner");
    assert_eq!(catalog_access(&rules, &olo, "brand_new"), "owner");
    assert_eq!(catalog_access(&rules, &olo, "system"), "read-only");
    assert!(!may(
        &rules,
        &olo,
        "SELECT",
        "lake",
        "sales.gold",
        "revenue"
    ));
    let plain = olo_templates::trino::rules(&example(), &olo_templates::RenderSettings::default());
    assert_eq!(catalog_access(&plain, &olo, "lake"), "none");
}

/// Whether `original` may run queries as `new` (Trino's impersonation rules: the first rule whose
/// `original_user` and `new_user` patterns match decides; none: denied).
fn may_impersonate(rules: &Value, original: &str, new: &str) -> bool {
    rules
        .get("impersonation")
        .and_then(Value::as_array)
        .and_then(|rs| {
            rs.iter()
                .find(|r| whole(r.get("original_user"), original) && whole(r.get("new_user"), new))
        })
        .is_some_and(|r| r["allow"].as_bool().unwrap_or(true))
}

#[test]
fn only_olos_service_user_may_run_queries_as_callers() {
    let settings = olo_templates::RenderSettings {
        trino_impersonator: Some("olo.svc".into()),
        ..Default::default()
    };
    let rules = olo_templates::trino::rules(&example(), &settings);
    assert!(may_impersonate(&rules, "olo.svc", "ann"));
    assert!(may_impersonate(&rules, "olo.svc", "alice@example.com"));
    assert!(!may_impersonate(&rules, "ann", "alice@example.com"));
    assert!(
        !may_impersonate(&rules, "oloXsvc", "ann"),
        "the name is quoted"
    );
    // Without the setting there is no impersonation at all.
    let plain = olo_templates::trino::rules(&example(), &olo_templates::RenderSettings::default());
    assert!(!may_impersonate(&plain, "olo.svc", "ann"));
}
