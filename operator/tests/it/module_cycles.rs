//! No import cycle between the modules of `operator/src` (issue 25): what a module imports
//! (`use crate::…`, `use super::…`, `use self::…`, braces expanded) is resolved to the module file
//! it names, and the graph of those edges must have no circle. An import from one of the
//! module's own ancestors (a parent's `mod.rs`) is not an edge: the parent declares the child,
//! and that structure is by design. Kept simple, as the issue asks: `use` lines only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use wca_test_harness::repo_root;

/// A module path: `["reconcile", "validate"]`; the crate root is `[]`.
type Module = Vec<String>;

/// Every `.rs` file below `src` with its module path.
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut found = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap();
            let mut module: Module = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            // main.rs is a crate of its own; its imports name the library by its crate name.
            if relative == Path::new("main.rs") {
                continue;
            }
            found.insert(module, path);
        }
    }
    found
}

/// The paths a `use` tree names, braces expanded: `a::{b, c::d}` → `a::b`, `a::c::d`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or(tree).trim().to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand(&format!("{prefix}{}", p.trim())))
        .collect()
}

/// The `use` statements of a file, and the `crate::…`/`super::…` paths written inline (outside
/// comments and `#[cfg(test)]` modules: a test may import freely). With `only_pub`, the
/// re-exports alone (`pub use`), without inline paths.
fn use_trees(text: &str, only_pub: bool) -> Vec<String> {
    let code: String = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or(text)
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let code = code.as_str();
    let mut trees = if only_pub {
        Vec::new()
    } else {
        inline_paths(code)
    };
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = &rest[..at];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let head = before[line_start..].trim();
        let after = &rest[at + 4..];
        let end = after.find(';').unwrap_or(after.len());
        let public = head == "pub" || head.starts_with("pub(");
        if public || (head.is_empty() && !only_pub) {
            trees.push(
                after[..end]
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        rest = &after[end.min(after.len())..];
    }
    trees
}

/// `crate::a::b` and `super::a` written in code rather than in a `use` line.
fn inline_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for start in ["crate::", "super::"] {
        for (at, _) in code.match_indices(start) {
            let preceded = code[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            if preceded {
                continue;
            }
            let path: String = code[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.push(path.trim_end_matches(':').to_string());
        }
    }
    paths
}

/// The module a path names, relative to `from`: the longest prefix that is a module file.
fn resolve(path: &str, from: &Module, known: &BTreeMap<Module, PathBuf>) -> Option<Module> {
    let mut segments = path.split("::").map(str::trim);
    let mut base: Module = match segments.next()? {
        "crate" => Vec::new(),
        "self" => from.clone(),
        "super" => from[..from.len().checked_sub(1)?].to_vec(),
        _ => return None, // another crate
    };
    let mut rest: Vec<&str> = segments.collect();
    while rest.first() == Some(&"super") {
        base.pop();
        rest.remove(0);
    }
    let mut best = known.contains_key(&base).then(|| base.clone());
    for segment in rest {
        base.push(segment.to_string());
        if known.contains_key(&base) {
            best = Some(base.clone());
        }
    }
    best
}

/// Modules declared under `#[cfg(test)]` (`mod tests;`, test fixtures): tests may import freely.
fn test_only(known: &BTreeMap<Module, PathBuf>) -> BTreeSet<Module> {
    let mut test_only = BTreeSet::new();
    for (module, file) in known {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            let declared = pair[1]
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ")
                .strip_prefix("mod ")
                .and_then(|rest| rest.strip_suffix(';'));
            if let (Some(name), true) = (declared, pair[0] == "#[cfg(test)]") {
                let mut child = module.clone();
                child.push(name.to_string());
                test_only.insert(child);
            }
        }
    }
    test_only
}

/// Where `module` takes the item `path` names from, when it re-exports it (`pub use
/// sub::Item;`): that module.
fn through_reexport(
    path: &str,
    module: &Module,
    known: &BTreeMap<Module, PathBuf>,
) -> Option<Module> {
    let item = path.rsplit("::").next()?;
    let text = std::fs::read_to_string(known.get(module)?).ok()?;
    use_trees(&text, true)
        .iter()
        .flat_map(|tree| expand(tree))
        .filter(|exported| exported.rsplit("::").next() == Some(item))
        .find_map(|exported| {
            let exported = if exported.starts_with("crate::") || exported.starts_with("super::") {
                exported
            } else {
                format!("self::{exported}")
            };
            resolve(&exported, module, known).filter(|m| m != module)
        })
}

/// The module graph's edges: importer → imported, without self and ancestor edges.
fn edges(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut known = modules(src);
    let tests = test_only(&known);
    known.retain(|module, _| !tests.iter().any(|t| module.starts_with(t)));
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, file) in &known {
        let text = std::fs::read_to_string(file).unwrap();
        for tree in use_trees(&text, false) {
            for path in expand(&tree) {
                let Some(target) = resolve(&path, module, &known) else {
                    continue;
                };
                // An item an ancestor re-exports (`use super::Valid` for `validate::Valid`):
                // the edge goes to the module that defines it.
                let target = through_reexport(&path, &target, &known).unwrap_or(target);
                if target == *module || module.starts_with(&target) {
                    continue;
                }
                graph.entry(module.clone()).or_default().insert(target);
            }
        }
        // A module depends on the submodules it declares: so a sibling's import into a child
        // and that child's import back close a circle too.
        if let Some((_, parent)) = module.split_last() {
            graph
                .entry(parent.to_vec())
                .or_default()
                .insert(module.clone());
        }
    }
    graph
}

/// One circle of the graph, if there is any (depth-first search).
fn a_circle(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn visit(
        node: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        path: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(at) = path.iter().position(|m| m == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.clone());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_modules_of_operator_src_import_in_one_direction() {
    let src = repo_root().join("operator/src");
    let graph = edges(&src);
    assert!(
        graph.values().map(BTreeSet::len).sum::<usize>() > 50,
        "the imports were read: {graph:?}"
    );
    if let Some(circle) = a_circle(&graph) {
        let names: Vec<String> = circle.iter().map(|m| m.join("::")).collect();
        panic!("an import cycle: {}", names.join(" -> "));
    }
}

/// The checker finds a circle where there is one, and follows braces, `super` and re-exports.
#[test]
fn the_cycle_check_sees_a_circle() {
    let dir = std::env::temp_dir().join(format!("wca-cycles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("lib.rs"), "pub mod a;\npub mod b;\n").unwrap();
    std::fs::write(dir.join("a/mod.rs"), "pub mod inner;\n").unwrap();
    std::fs::write(
        dir.join("a/inner.rs"),
        "use crate::{b::{Thing, other}, c};\n",
    )
    .unwrap();
    std::fs::write(dir.join("b.rs"), "pub use super::a::inner::Back;\n").unwrap();
    let graph = edges(&dir);
    let circle = a_circle(&graph).expect("a -> b -> a");
    let names: Vec<String> = circle.iter().map(|m| m.join("::")).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    std::fs::write(dir.join("b.rs"), "pub struct Thing;\n").unwrap();
    assert_eq!(a_circle(&edges(&dir)), None);
    // Through a parent's re-export: inner takes `X` from `a`, which re-exports it from `a::x`,
    // and `a::x` imports inner back.
    std::fs::write(
        dir.join("a/mod.rs"),
        "pub mod inner;\npub mod x;\npub use x::X;\n",
    )
    .unwrap();
    std::fs::write(dir.join("a/inner.rs"), "use super::X;\npub struct Z;\n").unwrap();
    std::fs::write(dir.join("a/x.rs"), "use super::inner::Z;\npub struct X;\n").unwrap();
    let circle = a_circle(&edges(&dir)).expect("a::inner -> a::x -> a::inner");
    let names: Vec<String> = circle.iter().map(|m| m.join("::")).collect();
    assert!(names.contains(&"a::x".to_string()), "{names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
