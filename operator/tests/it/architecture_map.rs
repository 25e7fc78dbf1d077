//! ARCHITECTURE.md's module map against `operator/src` (issue 25): every folder and file of the
//! source is named in the map, and every `.rs` file the map names exists, so the map can go
//! neither stale nor incomplete.

use std::collections::BTreeSet;
use std::path::Path;

use wca_test_harness::repo_root;

/// The code block of ARCHITECTURE.md that starts with `operator/src/`.
fn module_map() -> String {
    let text = std::fs::read_to_string(repo_root().join("ARCHITECTURE.md")).unwrap();
    let start = text
        .find("```\noperator/src/")
        .expect("ARCHITECTURE.md has a module map");
    let body = &text[start + 4..];
    body[..body.find("```").expect("the map's block ends")].to_string()
}

/// (folder names, file names) below `dir`.
fn tree(dir: &Path, folders: &mut BTreeSet<String>, files: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            folders.insert(name);
            tree(&path, folders, files);
        } else {
            files.insert(name);
        }
    }
}

#[test]
fn the_module_map_names_every_folder_and_file_of_operator_src_and_nothing_else() {
    let map = module_map();
    let (mut folders, mut files) = (BTreeSet::new(), BTreeSet::new());
    tree(&repo_root().join("operator/src"), &mut folders, &mut files);
    let words: BTreeSet<&str> = map
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/')))
        .collect();
    let missing: Vec<String> = folders
        .iter()
        .map(|f| format!("{f}/"))
        .chain(files.iter().cloned())
        .filter(|name| !words.iter().any(|w| w.trim_end_matches('.') == name))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's module map does not name: {missing:?}"
    );
    let stale: Vec<&str> = words
        .iter()
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| w.ends_with(".rs") && !w.contains('/'))
        .filter(|w| !files.contains(*w))
        .collect();
    assert!(
        stale.is_empty(),
        "ARCHITECTURE.md's module map names files operator/src does not have: {stale:?}"
    );
    assert!(files.len() > 50, "the tree was read: {}", files.len());
}
