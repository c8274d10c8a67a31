//! The generated Trino `rules.json` (file-based access control) read with Trino's rule semantics,
//! against a table of who-may-do-what cases on the example repository. Trino cannot run here, so
//! this evaluator follows Trino's documented semantics instead: for catalogs, schemas and tables
//! alike the first rule whose `user`, `group` and object patterns all match decides (patterns are
//! regular expressions matched against the whole name; an absent pattern matches everything);
//! no matching rule means no access; table access also needs catalog access.

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
    if catalog_access(rules, who, catalog) == "none" {
        return false;
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
        (
            &sales_eng,
            "OWNERSHIP",
            "lake",
            "sales.bronze",
            "orders",
            false,
        ),
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
