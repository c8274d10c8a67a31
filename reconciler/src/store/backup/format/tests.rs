//! The backup format's unit tests (format.rs).

use super::*;
use serde_json::json;

pub(super) fn column(name: &str, sql_type: &str) -> Column {
    Column {
        name: name.into(),
        sql_type: sql_type.into(),
    }
}

pub(super) fn header() -> Header {
    let mut h = Header::new(
        Backend::Sqlite,
        3,
        vec![
            Table {
                name: "revisions".into(),
                columns: vec![column("id", "INTEGER"), column("sha", "TEXT")],
            },
            Table {
                name: "plans".into(),
                columns: vec![column("id", "INTEGER"), column("body", "TEXT")],
            },
            Table {
                name: "inventory".into(),
                columns: vec![column("name", "TEXT")],
            },
        ],
        BTreeMap::from([("revisions".to_string(), 7), ("plans".to_string(), 2)]),
    );
    h.created_at = "2024-05-01T12:00:00.000000Z".into();
    h
}

pub(super) fn row(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

/// A complete backup of `header()` with two revisions and one plan.
fn file() -> String {
    let (mut encoder, mut text) = Encoder::new(&header());
    text += &encoder.row("revisions", &row(json!({"id": 1, "sha": "a1"})));
    text += &encoder.row("revisions", &row(json!({"id": 2, "sha": "b2"})));
    text += &encoder.row("plans", &row(json!({"id": 1, "body": "{\"x\":[1,2]}"})));
    text += &encoder.finish().0;
    text
}

fn decode(text: &str) -> Result<(Vec<Line>, Verified), FormatError> {
    let mut decoder = Decoder::new();
    let mut lines = Vec::new();
    for raw in text.split_inclusive('\n') {
        lines.push(decoder.line(raw)?);
    }
    Ok((lines, decoder.finish()?))
}

#[test]
fn a_backup_reads_back_line_for_line() {
    let text = file();
    let (lines, verified) = decode(&text).unwrap();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0], Line::Header(Box::new(header())));
    assert_eq!(
        lines[3],
        Line::Row {
            table: "plans".into(),
            row: row(json!({"id": 1, "body": "{\"x\":[1,2]}"}))
        }
    );
    assert_eq!(lines[4], Line::End);
    assert_eq!(verified.header, header());
    assert_eq!(
        verified.rows,
        BTreeMap::from([
            ("inventory".to_string(), 0),
            ("plans".to_string(), 1),
            ("revisions".to_string(), 2)
        ])
    );
    assert_eq!(verified.sha256.len(), 64);
}

#[test]
fn the_file_reads_as_documented() {
    let text = file();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        r#"{"format":"olo-backup","version":1,"backend":"sqlite","migrations":3,"created_at":"2024-05-01T12:00:00.000000Z","olo":"0.1.0","tables":[{"name":"revisions","columns":[{"name":"id","type":"INTEGER"},{"name":"sha","type":"TEXT"}]},{"name":"plans","columns":[{"name":"id","type":"INTEGER"},{"name":"body","type":"TEXT"}]},{"name":"inventory","columns":[{"name":"name","type":"TEXT"}]}],"sequences":{"plans":2,"revisions":7}}"#
            .replace("0.1.0", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        lines[1],
        r#"{"table":"revisions","row":{"id":1,"sha":"a1"}}"#
    );
    let sha256 =
        hex(Sha256::digest(&text.as_bytes()[..text.len() - lines[4].len() - 1]).as_slice());
    assert_eq!(
        lines[4],
        format!(
            r#"{{"end":"olo-backup","rows":{{"inventory":0,"plans":1,"revisions":2}},"sha256":"{sha256}"}}"#
        )
    );
}

#[test]
fn a_truncated_file_is_refused_wherever_it_is_cut() {
    let text = file();
    for cut in 1..text.len() {
        let err = decode(&text[..cut]).unwrap_err();
        assert!(
            matches!(
                err,
                FormatError::Truncated | FormatError::NotABackup | FormatError::Empty
            ),
            "cut at {cut}: {err:?}"
        );
        if cut > text.find('\n').unwrap() {
            assert_eq!(err, FormatError::Truncated, "cut at {cut}");
        }
    }
    assert_eq!(decode("").unwrap_err(), FormatError::Empty);
}

#[test]
fn a_file_missing_whole_lines_is_refused() {
    let text = file();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // Without its trailer.
    assert_eq!(
        decode(&lines[..4].concat()).unwrap_err(),
        FormatError::Truncated
    );
    // Without a row: the checksum no longer matches.
    let without_row = [lines[0], lines[1], lines[3], lines[4]].concat();
    assert!(matches!(
        decode(&without_row).unwrap_err(),
        FormatError::Checksum { .. }
    ));
}

#[test]
fn an_edited_row_is_refused_by_the_checksum() {
    let text = file().replace(r#""sha":"b2""#, r#""sha":"b3""#);
    let err = decode(&text).unwrap_err();
    assert!(matches!(err, FormatError::Checksum { .. }), "{err:?}");
    assert!(err
        .to_string()
        .contains("changed after `olo backup` wrote it"));
    // An edited header too.
    let text = file().replace(r#""migrations":3"#, r#""migrations":2"#);
    assert!(matches!(
        decode(&text).unwrap_err(),
        FormatError::Checksum { .. }
    ));
}

#[test]
fn an_edited_trailer_is_refused() {
    let text = file().replace(r#""revisions":2}"#, r#""revisions":3}"#);
    assert_eq!(
        decode(&text).unwrap_err(),
        FormatError::Counts {
            table: "revisions".into(),
            expected: 3,
            actual: 2
        }
    );
    let text = file().replace(r#""inventory":0,"#, "");
    let err = decode(&text).unwrap_err();
    assert!(
        err.to_string()
            .contains("does not count the header's tables"),
        "{err}"
    );
    let mut text = file();
    let at = text.rfind("\"sha256\":\"").unwrap() + 10;
    text.replace_range(at..at + 1, if &text[at..at + 1] == "0" { "1" } else { "0" });
    assert!(matches!(
        decode(&text).unwrap_err(),
        FormatError::Checksum { .. }
    ));
}

#[test]
fn data_after_the_trailer_is_refused() {
    let text = file() + "{\"table\":\"revisions\",\"row\":{\"id\":3,\"sha\":\"c\"}}\n";
    assert_eq!(
        decode(&text).unwrap_err(),
        FormatError::AfterTrailer { line: 6 }
    );
}

#[test]
fn other_files_are_not_backups() {
    for text in [
        "hello\n",
        "{}\n",
        "{\"format\":\"pg_dump\",\"version\":1}\n",
        "[1]\n",
    ] {
        assert_eq!(decode(text).unwrap_err(), FormatError::NotABackup, "{text}");
    }
}

#[test]
fn a_newer_format_version_is_refused_with_what_to_do() {
    let text = file().replacen(r#""version":1"#, r#""version":2"#, 1);
    let err = decode(&text).unwrap_err();
    assert_eq!(err, FormatError::NewerFormat { found: 2 });
    assert!(err.to_string().contains("restore it with a newer olo"));
}

#[test]
fn rows_must_match_the_header() {
    let (mut encoder, header_line) = Encoder::new(&header());
    let good = encoder.row("revisions", &row(json!({"id": 1, "sha": "a1"})));
    let cases = [
        (
            r#"{"table":"runs","row":{"id":1}}"#,
            "a table the header lacks",
        ),
        (
            r#"{"table":"revisions","row":{"id":1}}"#,
            "not the header's",
        ),
        (
            r#"{"table":"revisions","row":{"id":1,"sha":"a","x":1}}"#,
            "not the header's",
        ),
        (r#"{"table":"revisions"}"#, "not a row"),
        ("not json", "not a JSON document"),
    ];
    for (line, message) in cases {
        let mut decoder = Decoder::new();
        decoder.line(&header_line).unwrap();
        let err = decoder.line(&format!("{line}\n")).unwrap_err();
        assert!(
            matches!(&err, FormatError::Malformed { line: 2, message: m } if m.contains(message)),
            "{line}: {err:?}"
        );
    }
    // A row of an earlier table after a later one: the restore order would break.
    let mut decoder = Decoder::new();
    decoder.line(&header_line).unwrap();
    decoder
        .line("{\"table\":\"plans\",\"row\":{\"id\":1,\"body\":\"{}\"}}\n")
        .unwrap();
    let err = decoder.line(&good).unwrap_err();
    assert!(
        err.to_string().contains("after rows of a later table"),
        "{err}"
    );
}

#[test]
fn timestamps_take_one_form() {
    for (given, canonical) in [
        ("2024-05-01T12:00:00+00:00", "2024-05-01T12:00:00.000000Z"),
        ("2024-05-01T12:00:00.5+00:00", "2024-05-01T12:00:00.500000Z"),
        (
            "2024-05-01T14:00:00.123456+02:00",
            "2024-05-01T12:00:00.123456Z",
        ),
        ("2024-05-01T12:00:00.000001Z", "2024-05-01T12:00:00.000001Z"),
    ] {
        assert_eq!(canonical_time(given).as_deref(), Some(canonical), "{given}");
    }
    assert_eq!(canonical_time("yesterday"), None);
}
