use super::*;

#[test]
fn the_startup_line_says_which_engines_reach_the_lakehouse() {
    let with = |catalog, warehouse| {
        let mut s = Settings::default();
        s.lakehouse.catalog = catalog;
        s.lakehouse.warehouse = warehouse;
        s.lakehouse_reach()
    };
    insta::assert_snapshot!(
        "lakehouse_reach_embedded_default",
        Settings::default().lakehouse_reach().unwrap()
    );
    assert!(with(CatalogKind::Sql, WarehouseKind::S3)
        .unwrap()
        .contains("SQL catalog (lakehouse.catalog = \"sql\")"));
    assert!(with(CatalogKind::Rest, WarehouseKind::Local)
        .unwrap()
        .starts_with("lakehouse: warehouses on olo's disk (lakehouse.warehouse = \"local\"): Trino and Spark cannot"));
    assert_eq!(with(CatalogKind::Rest, WarehouseKind::S3), None);
    assert_eq!(with(CatalogKind::Off, WarehouseKind::Off), None);
}

#[test]
fn trino_settings_are_checked() {
    let with = |f: &dyn Fn(&mut TrinoSettings)| {
        let mut s = Settings::default();
        f(&mut s.trino);
        s.check().map_err(|e| e.to_string())
    };
    assert_eq!(
        (
            Settings::default().trino.max_rows,
            Settings::default().trino.timeout_seconds
        ),
        (1000, 60)
    );
    assert!(with(&|_| {}).is_ok());
    assert!(with(&|t| t.max_rows = TRINO_MAX_ROWS_CAP).is_ok());
    let refused = [
        (
            with(&|t| t.max_rows = TRINO_MAX_ROWS_CAP + 1),
            "trino.max_rows",
        ),
        (with(&|t| t.max_rows = 0), "trino.max_rows"),
        (with(&|t| t.timeout_seconds = 0), "trino.timeout_seconds"),
        (with(&|t| t.username = Some("olo".into())), "go together"),
        (
            with(&|t| {
                t.token_env = Some("T".into());
                t.username = Some("olo".into());
                t.password_env = Some("P".into());
            }),
            "not both",
        ),
    ];
    for (result, message) in refused {
        let err = result.expect_err(message);
        assert!(err.contains(message), "{err}");
    }
}

#[test]
fn pull_request_writes_need_github_and_a_remote_to_push_to() {
    let with = |url: Option<&str>, github: bool| {
        let mut s = Settings::default();
        s.api.writes = olo_server::writes::Mode::PullRequest;
        s.source.url = url.map(String::from);
        if github {
            s.github.repository = Some("acme/platform".into());
            s.github.token_env = Some("GITHUB_TOKEN".into());
        }
        s.check().map_err(|e| e.to_string())
    };
    let err = with(None, true).unwrap_err();
    assert!(
        err.contains("needs source.url") && err.contains("examples-repo"),
        "{err}"
    );
    let err = with(Some("https://github.com/acme/platform.git"), false).unwrap_err();
    assert!(err.contains("needs GitHub"), "{err}");
    assert!(with(Some("https://github.com/acme/platform.git"), true).is_ok());
}

#[test]
fn the_log_format_comes_from_the_file_and_olo_log_format_wins() {
    let dir = tempfile::tempdir().unwrap();
    let load = |toml: &str| {
        let file = dir.path().join("olo.toml");
        std::fs::write(&file, toml).unwrap();
        Settings::load(Some(&file))
    };
    assert_eq!(Settings::default().log.format, LogFormat::Text);
    let mut s = load("[log]\nformat = \"json\"\n").unwrap();
    assert_eq!(s.log.format, LogFormat::Json);
    let err = load("[log]\nformat = \"xml\"\n").unwrap_err();
    assert!(format!("{err:#}").contains("xml"), "{err:#}");
    assert!(
        load("[log]\nlevel = \"debug\"\n").is_err(),
        "unknown keys are errors"
    );
    s.log_format_from(Some("TEXT".into())).unwrap();
    assert_eq!(s.log.format, LogFormat::Text);
    s.log_format_from(Some("json".into())).unwrap();
    assert_eq!(s.log.format, LogFormat::Json);
    s.log_format_from(None).unwrap();
    s.log_format_from(Some(String::new())).unwrap();
    assert_eq!(s.log.format, LogFormat::Json, "unset or empty: the file's");
    let err = s.log_format_from(Some("yaml".into())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "OLO_LOG_FORMAT = \"yaml\": expected text or json"
    );
}

#[test]
fn dynamic_catalogs_put_the_catalog_user_into_the_rendered_rules() {
    let load = |toml: &str| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("olo.toml");
        std::fs::write(&file, toml).unwrap();
        Settings::load(Some(&file))
            .unwrap()
            .render
            .trino_catalog_manager
    };
    let dynamic = "[trino]\nurl = \"http://trino:8080\"\ncatalogs = \"dynamic\"\n";
    assert_eq!(load(dynamic), Some("olo".into()));
    assert_eq!(
        load(&format!("{dynamic}catalog_user = \"svc\"\n")),
        Some("svc".into())
    );
    assert_eq!(
        load(&format!(
            "{dynamic}[render]\ntrino_catalog_manager = \"other\"\n"
        )),
        Some("other".into())
    );
    assert_eq!(load("[trino]\nurl = \"http://trino:8080\"\n"), None);
}

#[test]
fn verification_is_off_by_default_and_enforce_needs_keys() {
    use olo_reconciler::signature::Policy;
    let dir = tempfile::tempdir().unwrap();
    let load = |toml: &str| {
        let file = dir.path().join("olo.toml");
        std::fs::write(&file, toml).unwrap();
        Settings::load(Some(&file)).map_err(|e| format!("{e:#}"))
    };
    let defaults = Settings::default();
    assert_eq!(defaults.verify.policy, Policy::Off);
    assert!(
        defaults.verify.verifier().unwrap().is_none(),
        "off: no verifier"
    );

    let err = load("[verify]\npolicy = \"enforce\"\n").unwrap_err();
    assert!(err.contains("needs trusted keys"), "{err}");
    let err = load("[verify]\npolicy = \"strict\"\n").unwrap_err();
    assert!(err.contains("strict"), "{err}");
    let s = load("[verify]\npolicy = \"audit\"\n").unwrap();
    assert_eq!(s.verify.policy, Policy::Audit);

    let signers = dir.path().join("allowed_signers");
    std::fs::write(&signers, "# nobody yet\n").unwrap();
    let s = load(&format!(
        "[verify]\npolicy = \"enforce\"\nallowed_signers = \"{}\"\n",
        signers.display()
    ))
    .unwrap();
    assert!(s.verify.verifier().unwrap().is_some());

    // A key file that is not there stops olo at start, naming the file.
    let mut missing = s.verify.clone();
    missing.openpgp_keys = vec![dir.path().join("no-such-key.asc")];
    let err = format!("{:#}", missing.verifier().unwrap_err());
    assert!(err.contains("no-such-key.asc"), "{err}");
}
