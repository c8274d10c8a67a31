//! Backing up and restoring in the checks, and reading, writing and classifying backup files.

use olo_reconciler::store::backup;
use olo_reconciler::store::backup::format::Decoder;
use olo_reconciler::store::backup::format::Encoder;
use olo_reconciler::store::backup::format::Line;
use olo_reconciler::store::backup::Backend;
use olo_reconciler::store::backup::BackupError;
use olo_reconciler::store::backup::FormatError;
use olo_reconciler::store::backup::Progress;
use serde_json::json;
use std::path::Path;

use super::fixtures::*;
use super::harness::*;

pub(crate) fn quiet(_: Progress<'_>) {}

/// A filled store, its backup, and a second database of the same backend (untouched).
pub(crate) async fn backed_up(backend: Backend) -> (tempfile::TempDir, Db, Db, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (original, second) = (Db::new(backend).await, Db::new(backend).await);
    fill(&original).await;
    let file = dir.path().join("b.jsonl");
    backup_of(&original, &file).await;
    (dir, original, second, file)
}

/// A revision and `audits` audit entries of a store's own, not the fixture's.
pub(crate) async fn rows_of_its_own(db: &Db, audits: usize) {
    let store = db.open().await;
    store
        .record_revision(&revision("main", "x9", false))
        .await
        .unwrap();
    for _ in 0..audits {
        store
            .append_audit(&audit("apply", Some("x9"), json!({})))
            .await
            .unwrap();
    }
}

pub(crate) async fn backup_of(db: &Db, file: &Path) -> backup::Summary {
    backup::backup(&db.url, file, &quiet)
        .await
        .unwrap_or_else(|e| panic!("backup of {}: {e:?}", db.url))
}

pub(crate) async fn restore(
    db: &Db,
    file: &Path,
    force: bool,
) -> Result<backup::Summary, BackupError> {
    backup::restore(&db.url, file, force, &quiet).await
}

/// The row lines of a backup (without header and trailer).
pub(crate) fn row_lines(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// The lines of a backup file, decoded and checked.
pub(crate) fn decoded(file: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut decoder = Decoder::new();
    let lines = text
        .split_inclusive('\n')
        .map(|raw| decoder.line(raw).unwrap())
        .collect();
    decoder.finish().unwrap();
    lines
}

/// Writes a backup made of `lines` (a header, then rows), with a trailer that matches them.
pub(crate) fn write_backup(file: &Path, lines: &[Line]) {
    let Line::Header(header) = &lines[0] else {
        panic!("no header")
    };
    let (mut encoder, mut text) = Encoder::new(header);
    for line in &lines[1..] {
        if let Line::Row { table, row } = line {
            text += &encoder.row(table, row);
        }
    }
    text += &encoder.finish().0;
    std::fs::write(file, text).unwrap();
}

pub(crate) fn file_error(result: Result<backup::Summary, BackupError>) -> FormatError {
    match result {
        Err(BackupError::File { source, .. }) => source,
        other => panic!("expected a refused file, got {other:?}"),
    }
}
