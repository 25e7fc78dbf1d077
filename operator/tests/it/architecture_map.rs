//! ARCHITECTURE.md's module map against `operator/src` (issue 25): every folder and file of the
//! source is named in the map, and every `.rs` file the map names exists, so the map can go
//! neither stale nor incomplete.

use std::collections::BTreeSet;
use std::path::Path;

use wca_test_harness::repo_root;

/// The code block of ARCHITECTURE.md whose first line starts with `first`.
fn code_block(first: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join("ARCHITECTURE.md")).unwrap();
    let start = text
        .find(&format!("```\n{first}"))
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has a block starting {first}"));
    let body = &text[start + 4..];
    body[..body.find("```").expect("the block ends")].to_string()
}

/// The module map.
fn module_map() -> String {
    code_block("operator/src/")
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

/// The map of the tests.
fn tests_map() -> String {
    code_block("operator/tests/it/")
}

#[test]
fn the_tests_map_names_every_test_module() {
    let map = tests_map();
    let words: BTreeSet<&str> = map
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '*')))
        .map(|w| w.trim_end_matches('.'))
        .collect();
    // The it/ modules are named as modules (`drift`, `proxy_*`), the others as files.
    let named = |dir: &str, stem: &str| {
        let file = format!("{stem}.rs");
        words.iter().any(|w| match w.strip_suffix('*') {
            Some(prefix) => dir == "it" && !prefix.is_empty() && stem.starts_with(prefix),
            None => *w == file || (dir == "it" && *w == stem),
        })
    };
    let mut missing = Vec::new();
    let mut seen = 0;
    for dir in ["it", "e2e", "support"] {
        let path = repo_root().join("operator/tests").join(dir);
        for entry in std::fs::read_dir(&path).unwrap() {
            let file = entry.unwrap().path();
            let Some(stem) = file
                .extension()
                .is_some_and(|e| e == "rs")
                .then(|| file.file_stem().unwrap().to_string_lossy().into_owned())
            else {
                continue;
            };
            if matches!(stem.as_str(), "main" | "mod") {
                continue;
            }
            seen += 1;
            if !named(dir, &stem) {
                missing.push(format!("{dir}/{stem}.rs"));
            }
        }
    }
    assert!(seen > 40, "the tests were read: {seen}");
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's tests map does not name: {missing:?}"
    );
}
