//! The function-length target of issue 25: no production function of `operator/src` over 80
//! lines, none over 60 in `reconcile/` and `controller/` (the reconcile and its driver should
//! read a step at a time). Test code is not held to it: the files a parent declares under
//! `#[cfg(test)]` and each file's own `#[cfg(test)] mod … { … }` are skipped.
//!
//! A function's length is counted from the line of `fn` to the line of its closing brace, with
//! comments, strings and character literals blanked first so their braces do not count.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use wca_test_harness::repo_root;

const LIMIT: usize = 80;
/// The reconcile pipeline and the controller's wiring.
const STRICT_LIMIT: usize = 60;
const STRICT_FOLDERS: [&str; 2] = ["reconcile", "controller"];

/// `source` with every comment, string and character literal replaced by spaces (newlines
/// kept), so that only code braces remain.
fn blank_literals(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let rest = &chars[i..];
        let starts = |s: &str| rest.iter().take(s.len()).copied().eq(s.chars());
        let end = if starts("//") {
            rest.iter().position(|&c| c == '\n').unwrap_or(rest.len())
        } else if starts("/*") {
            rest.windows(2)
                .position(|w| w == ['*', '/'])
                .map_or(rest.len(), |p| p + 2)
        } else if let Some(hashes) = raw_string_start(rest) {
            let closing: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let body = hashes + 2; // r, the hashes, the quote
            rest[body..]
                .windows(closing.len())
                .position(|w| w == closing.as_slice())
                .map_or(rest.len(), |p| body + p + closing.len())
        } else if rest[0] == '"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != '"' {
                j += if rest[j] == '\\' { 2 } else { 1 };
            }
            (j + 1).min(rest.len())
        } else if rest[0] == '\'' {
            // A character literal ('x', '\n', '\u{7f}'), not a lifetime ('a).
            match (rest.get(1), rest.get(2)) {
                (Some('\\'), _) => rest[2..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map_or(1, |p| p + 3),
                (Some(_), Some('\'')) => 3,
                _ => 1,
            }
        } else {
            0
        };
        if end == 0 || (end == 1 && rest[0] == '\'') {
            out.push(rest[0]);
            i += 1;
        } else {
            out.extend(rest[..end].iter().map(|&c| blank(c)));
            i += end;
        }
    }
    out
}

/// With `rest` at `r"`, `r#"`, `br##"`…: the number of hashes.
fn raw_string_start(rest: &[char]) -> Option<usize> {
    let after_b = if rest.first() == Some(&'b') { 1 } else { 0 };
    if rest.get(after_b) != Some(&'r') {
        return None;
    }
    let hashes = rest[after_b + 1..]
        .iter()
        .take_while(|&&c| c == '#')
        .count();
    (rest.get(after_b + 1 + hashes) == Some(&'"')).then_some(hashes + after_b)
}

/// Each function of `code` (already blanked) outside test modules: (first line, name, lines).
fn functions(code: &str) -> Vec<(usize, String, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    let mut skip_until = 0;
    for (number, line) in lines.iter().enumerate() {
        if number < skip_until {
            continue;
        }
        let trimmed = line.trim_start();
        // `#[cfg(test)] mod tests { … }`: skipped as a whole.
        if trimmed.starts_with("#[cfg(test)]")
            && let Some(next) = lines.get(number + 1)
            && next.trim_start().starts_with("mod ")
            && next.contains('{')
        {
            skip_until = closing_line(&lines, number + 1).map_or(lines.len(), |l| l + 1);
            continue;
        }
        let Some(name) = fn_name(trimmed) else {
            continue;
        };
        if let Some(end) = body_end(&lines, number) {
            found.push((number + 1, name, end - number + 1));
        }
    }
    found
}

/// The name after `fn` when the line declares a function (`#[inline] pub(crate) async fn
/// name…`).
fn fn_name(line: &str) -> Option<String> {
    let mut line = line.trim_start();
    // Attributes on the same line: `#[inline] fn`, `#[must_use] pub fn`.
    while let Some(rest) = line.strip_prefix("#[") {
        line = rest[rest.find(']')? + 1..].trim_start();
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "fn")?;
    let modifiers = &words[..at];
    let is_modifier = |w: &&str| {
        w.starts_with("pub")
            || w.starts_with("in ") // pub(in crate::x) split at the space
            || w.ends_with(')')
            || matches!(*w, "async" | "const" | "unsafe" | "extern" | "\"C\"" | "default")
    };
    if !modifiers.iter().all(is_modifier) {
        return None;
    }
    let name: String = words
        .get(at + 1)?
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The line of the brace closing the body that opens at or after `start`; `None` for a
/// declaration without a body (`fn f();` in a trait). A `;` inside brackets or parentheses
/// (`[u8; 4]`) does not end the signature.
fn body_end(lines: &[&str], start: usize) -> Option<usize> {
    let mut nesting = 0i32;
    for (number, line) in lines.iter().enumerate().skip(start) {
        for c in line.chars() {
            match c {
                '(' | '[' => nesting += 1,
                ')' | ']' => nesting -= 1,
                ';' if nesting == 0 => return None,
                '{' if nesting == 0 => return closing_line(lines, number),
                _ => {}
            }
        }
    }
    None
}

/// The line where the first `{` at or after line `start` is closed.
fn closing_line(lines: &[&str], start: usize) -> Option<usize> {
    let mut depth = 0i32;
    let mut opened = false;
    for (number, line) in lines.iter().enumerate().skip(start) {
        for c in line.chars() {
            match c {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                _ => {}
            }
            if opened && depth == 0 {
                return Some(number);
            }
        }
    }
    None
}

/// The files `operator/src` compiles only for tests: declared `#[cfg(test)] mod name;`.
fn test_only_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut test_only = BTreeSet::new();
    for file in files {
        let source = std::fs::read_to_string(file).unwrap();
        let dir = match file.file_name().and_then(|n| n.to_str()) {
            Some("mod.rs" | "lib.rs" | "main.rs") => file.parent().unwrap().to_path_buf(),
            _ => file.with_extension(""),
        };
        let lines: Vec<&str> = source.lines().collect();
        for pair in lines.windows(2) {
            let declared = pair[1].trim();
            if pair[0].trim() == "#[cfg(test)]"
                && let Some(name) = declared
                    .trim_start_matches("pub(crate) ")
                    .trim_start_matches("pub ")
                    .strip_prefix("mod ")
                    .and_then(|rest| rest.strip_suffix(';'))
            {
                test_only.insert(dir.join(format!("{name}.rs")));
                test_only.insert(dir.join(name).join("mod.rs"));
            }
        }
    }
    test_only
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn no_production_function_is_over_the_length_target() {
    let src = repo_root().join("operator/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let test_only = test_only_files(&files);
    let mut over = Vec::new();
    let mut counted = 0;
    for file in files.iter().filter(|f| !test_only.contains(*f)) {
        let relative = file.strip_prefix(&src).unwrap();
        let strict = STRICT_FOLDERS
            .iter()
            .any(|folder| relative.starts_with(folder));
        let limit = if strict { STRICT_LIMIT } else { LIMIT };
        let code = blank_literals(&std::fs::read_to_string(file).unwrap());
        for (line, name, length) in functions(&code) {
            counted += 1;
            if length > limit {
                over.push(format!(
                    "{}:{line} {name}: {length} lines (limit {limit})",
                    relative.display()
                ));
            }
        }
    }
    // The walk found the code it is about (a broken parser finding nothing would pass).
    assert!(counted > 300, "only {counted} functions found");
    assert!(
        over.is_empty(),
        "functions over the length target (issue 25): split them into named steps\n{}",
        over.join("\n")
    );
}

#[test]
fn the_counter_sees_braces_in_code_only_and_skips_test_modules() {
    let code = blank_literals(
        r##"fn short() {
    let s = "}}}";
    let r = r#"{"#;
    let c = '{';
    // }
    let _l: &'static str = "";
}
#[cfg(test)]
mod tests {
    fn hidden() {}
}
pub(crate) async fn two() {
    x();
}
#[inline] fn attributed() {}
impl Thing {
    pub(in crate::a) fn arrays<T>(x: [u8; 4]) -> usize
    where
        T: Sized,
    {
        x.len()
    }
}
trait Declared {
    fn declared(&self);
}
"##,
    );
    let found = functions(&code);
    assert_eq!(
        found,
        [
            (1, "short".to_string(), 7),
            (12, "two".to_string(), 3),
            (15, "attributed".to_string(), 1),
            (17, "arrays".to_string(), 6),
        ]
    );
}
