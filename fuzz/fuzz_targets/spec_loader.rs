//! The config loader: YAML with positions, the JSON Schema, the semantic checks, and the
//! renderer for whatever validates. The input replaces one YAML file of the bundled example
//! repository (its first byte picks which); every other file stays as shipped, so the checks
//! that read across files (namespaces, `depends_on`, referenced SQL) run too.
//!
//! Checked: nothing panics; every diagnostic names a file of the snapshot at a position inside
//! it (or line 0 for a whole-file problem) and says something; a snapshot with no error renders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use olo_fuzz::{example_files, example_snapshot};
use olo_schema::validate;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let files = example_files();
    let yaml: Vec<usize> = (0..files.len())
        .filter(|&i| files[i].0.ends_with(".yaml"))
        .collect();
    let replaced = yaml[pick as usize % yaml.len()];
    let snapshot = example_snapshot(Some((replaced, content)));
    let lines_of = |path: &str| -> Option<usize> {
        let bytes = if files[replaced].0 == path {
            content
        } else {
            files
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, b)| b.as_slice())?
        };
        // YAML's line breaks: `\r\n`, `\r` and `\n`.
        let breaks = bytes.iter().filter(|&&b| b == b'\n').count()
            + bytes.iter().filter(|&&b| b == b'\r').count()
            - bytes.windows(2).filter(|w| w == b"\r\n").count();
        Some(breaks + 1)
    };

    let validation = validate(snapshot);
    for d in &validation.diagnostics {
        assert!(
            !d.message.trim().is_empty(),
            "a diagnostic says nothing: {d:?}"
        );
        // Repository-wide problems (a missing workspace file, say) name the path they expected.
        if let Some(lines) = lines_of(&d.path) {
            assert!(
                (d.line as usize) <= lines + 1,
                "{d} points past the end of its file ({lines} lines)"
            );
        }
    }
    if let Some(repo) = &validation.repo {
        assert_eq!(validation.errors(), 0);
        olo_templates::render::render(repo, &olo_templates::RenderSettings::default())
            .unwrap_or_else(|e| panic!("a repository that validates does not render: {e}"));
    } else {
        assert!(validation.errors() > 0, "no repository and no error");
    }
});
