//! Format checks: truncated and edited files are refused before the store is touched.

use olo_reconciler::store::backup;
use olo_reconciler::store::backup::Backend;
use olo_reconciler::store::backup::BackupError;
use olo_reconciler::store::backup::FormatError;

use super::fixtures::*;
use super::support::*;

pub(crate) async fn restore_refuses_truncated_and_edited_files_before_touching_the_store(
    backend: Backend,
) {
    let (dir, original, copy, file) = backed_up(backend).await;
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let bad = |name: &str, content: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    };

    let cut_in_a_row = bad("cut.jsonl", text[..text.len() / 2].to_string());
    let without_trailer = bad("short.jsonl", lines[..lines.len() - 1].concat());
    let edited = bad(
        "edited.jsonl",
        text.replacen("\"sha\":\"a1\"", "\"sha\":\"a0\"", 1),
    );
    let appended = bad("appended.jsonl", format!("{text}{}", lines[1]));
    let not_a_backup = bad("other.jsonl", "{\"hello\":1}\n".to_string());

    assert_eq!(
        file_error(restore(&copy, &cut_in_a_row, false).await),
        FormatError::Truncated
    );
    assert_eq!(
        file_error(restore(&copy, &without_trailer, true).await),
        FormatError::Truncated
    );
    assert!(matches!(
        file_error(restore(&copy, &edited, false).await),
        FormatError::Checksum { .. }
    ));
    assert!(matches!(
        file_error(restore(&copy, &appended, false).await),
        FormatError::AfterTrailer { .. }
    ));
    assert_eq!(
        file_error(restore(&copy, &not_a_backup, false).await),
        FormatError::NotABackup
    );
    let err = restore(&copy, &edited, false).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("edited.jsonl is not a backup olo can restore"),
        "{err}"
    );
    assert!(!copy.has_tables().await, "a refused file reached the store");
    assert!(matches!(
        backup::check(&edited).await,
        Err(BackupError::File { .. })
    ));

    // The good file restores.
    assert_eq!(backup::check(&file).await.unwrap().rows["audit_log"], 3);
    restore(&copy, &file, false).await.unwrap();
    assert_eq!(view(&copy).await, view(&original).await);
    original.finish().await;
    copy.finish().await;
}
