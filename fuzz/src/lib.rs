//! What the fuzz targets share: the bundled example repository, read once.

use std::path::Path;
use std::sync::OnceLock;

/// The example repository's files (`examples-repo/`), path and bytes, sorted by path.
pub fn example_files() -> &'static [(String, Vec<u8>)] {
    static FILES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples-repo");
        let mut files = Vec::new();
        walk(&root, &root, &mut files);
        files.sort();
        files
    })
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("the example repository is readable") {
        let path = entry.expect("a readable folder entry").path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).expect("below the root");
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.push((rel, std::fs::read(&path).expect("a readable file")));
        }
    }
}

/// A snapshot of the example repository, with `replace` (an index into [`example_files`])
/// holding `content` instead of its own bytes.
pub fn example_snapshot(replace: Option<(usize, &[u8])>) -> olo_schema::Snapshot {
    let mut snapshot =
        olo_schema::Snapshot::new(Some("0123456789abcdef0123456789abcdef01234567".into()));
    for (i, (path, bytes)) in example_files().iter().enumerate() {
        match replace {
            Some((j, content)) if j == i => snapshot.insert_file(path.clone(), content.to_vec()),
            _ => snapshot.insert_file(path.clone(), bytes.clone()),
        }
    }
    snapshot
}
