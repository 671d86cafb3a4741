//! The harness library's modules form a DAG: no import cycle among the top-level modules, nor
//! among the submodules of any one module.
//!
//! The check reads `harness/src/**/*.rs` (the library; `main.rs` and `cli/`, the binary, use
//! the library only through `lastwill::`), strips comments and literals, and resolves every
//! path that starts with `crate::`, `super::` or `self::` against the module it appears in
//! (files and inline `mod name { ... }` blocks alike). A path from inside module `a` to an
//! item inside its sibling `b` is an edge `a -> b`; a path to an ancestor's own items is not
//! (a child may use what its parent declares). A failure prints the cycle and, for each edge,
//! the first line that makes it.
//!
//! `lib.rs` lists the top-level modules in its docs so that each uses only those above it;
//! that order is checked too, so the list names every module and stays a true layering.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type ModulePath = Vec<String>;

/// Where an edge comes from: `file:line` and the path written there.
type Evidence = String;

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other,
}

/// The tokens of `source` with their line numbers, without comments, strings and chars.
fn tokens(source: &str) -> Vec<(usize, Token)> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if at(i + 1) == '/' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                let mut depth = 0;
                loop {
                    if at(i) == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if at(i) == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else if i >= chars.len() {
                        break;
                    } else {
                        line += usize::from(chars[i] == '\n');
                        i += 1;
                    }
                }
            }
            'r' if at(i + 1) == '"' || (at(i + 1) == '#' && matches!(at(i + 2), '"' | '#')) => {
                // raw string r#"..."#: ends at a quote followed by as many hashes
                let mut hashes = 0;
                i += 1;
                while at(i) == '#' {
                    hashes += 1;
                    i += 1;
                }
                i += 1;
                loop {
                    if i >= chars.len() {
                        break;
                    }
                    if chars[i] == '"' && (1..=hashes).all(|h| at(i + h) == '#') {
                        i += 1 + hashes;
                        break;
                    }
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    line += usize::from(at(i) == '\n');
                    i += 1;
                }
                i += 1;
            }
            // a char literal ('x', '\n', '\u{1F600}'); otherwise a lifetime ('a)
            '\'' if at(i + 1) == '\\' => {
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            }
            '\'' if at(i + 2) == '\'' => i += 3,
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
                out.push((line, Token::Ident(chars[start..i].iter().collect())));
            }
            ':' if at(i + 1) == ':' => {
                out.push((line, Token::PathSep));
                i += 2;
            }
            '{' | '}' | ',' => {
                out.push((
                    line,
                    match c {
                        '{' => Token::Open,
                        '}' => Token::Close,
                        _ => Token::Comma,
                    },
                ));
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            _ => {
                out.push((line, Token::Other));
                i += 1;
            }
        }
    }
    out
}

/// The paths after `prefix::` at `tokens[i..]`: one, or several for `prefix::{a, b::{c, d}}`.
/// Returns them and the index after the path.
fn paths(tokens: &[(usize, Token)], mut i: usize, prefix: ModulePath) -> (Vec<ModulePath>, usize) {
    let mut path = prefix;
    loop {
        match tokens.get(i).map(|t| &t.1) {
            Some(Token::Ident(name)) => {
                path.push(name.clone());
                i += 1;
                if tokens.get(i).map(|t| &t.1) != Some(&Token::PathSep) {
                    return (vec![path], i);
                }
                i += 1;
            }
            Some(Token::Open) => {
                let mut all = Vec::new();
                i += 1;
                loop {
                    match tokens.get(i).map(|t| &t.1) {
                        Some(Token::Close) => return (all, i + 1),
                        Some(Token::Comma) => i += 1,
                        None => return (all, i),
                        _ => {
                            let (more, next) = paths(tokens, i, path.clone());
                            all.extend(more);
                            // `self` in a group, `*`, `as` renames: skip to the next entry
                            i = next.max(i + 1);
                            while !matches!(
                                tokens.get(i).map(|t| &t.1),
                                Some(Token::Comma | Token::Close) | None
                            ) {
                                i += 1;
                            }
                        }
                    }
                }
            }
            // a glob (`*`) or the end of a path in a group
            _ => return (vec![path], i),
        }
    }
}

/// One path: the module it is written in, its line, and what it names (from the crate root).
struct Reference {
    from: ModulePath,
    line: usize,
    written: String,
    to: ModulePath,
}

/// Every `crate::`, `super::` and `self::` path in `source`, a file of module `module`, and
/// the inline modules it declares.
fn references(module: &ModulePath, source: &str) -> (Vec<Reference>, Vec<ModulePath>) {
    let tokens = tokens(source);
    let mut refs = Vec::new();
    let mut inline = Vec::new();
    // the inline module scopes open at this point: (path, brace depth inside them)
    let mut scopes: Vec<(ModulePath, usize)> = vec![(module.clone(), 0)];
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        let here = scopes.last().expect("the file's own scope").0.clone();
        let after_sep = i > 0 && tokens[i - 1].1 == Token::PathSep;
        match &tokens[i].1 {
            Token::Ident(word)
                if word == "mod"
                    && matches!(tokens.get(i + 1), Some((_, Token::Ident(_))))
                    && matches!(tokens.get(i + 2), Some((_, Token::Open))) =>
            {
                let Some((_, Token::Ident(name))) = tokens.get(i + 1) else {
                    unreachable!("matched above")
                };
                let mut path = here.clone();
                path.push(name.clone());
                inline.push(path.clone());
                depth += 1;
                scopes.push((path, depth));
                i += 3;
                continue;
            }
            Token::Ident(word)
                if !after_sep
                    && matches!(word.as_str(), "crate" | "super" | "self")
                    && matches!(tokens.get(i + 1), Some((_, Token::PathSep))) =>
            {
                let line = tokens[i].0;
                let mut base = here.clone();
                let mut j = i;
                if word == "crate" {
                    base.clear();
                    j += 2;
                } else {
                    // `super::super::...`, `self::...`
                    while let Some((_, Token::Ident(w))) = tokens.get(j) {
                        if w == "super" {
                            base.pop();
                        } else if w != "self" {
                            break;
                        }
                        j += 1;
                        if tokens.get(j).map(|t| &t.1) != Some(&Token::PathSep) {
                            break;
                        }
                        j += 1;
                    }
                }
                let (targets, next) = paths(&tokens, j, base);
                for to in targets {
                    refs.push(Reference {
                        from: here.clone(),
                        line,
                        written: format!("crate::{}", to.join("::")),
                        to,
                    });
                }
                i = next.max(i + 1);
                continue;
            }
            Token::Open => depth += 1,
            Token::Close => {
                if scopes.len() > 1 && scopes.last().is_some_and(|(_, d)| *d == depth) {
                    scopes.pop();
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        i += 1;
    }
    (refs, inline)
}

/// The module a source file defines: `a/b.rs` and `a/b/mod.rs` are `a::b`; `lib.rs` is the
/// crate root.
fn module_of(relative: &Path) -> ModulePath {
    let mut parts: ModulePath = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// For every module with submodules, the edges among its submodules.
type Graphs = BTreeMap<ModulePath, BTreeMap<String, BTreeMap<String, Evidence>>>;

/// The sibling edges made by `files` (path relative to `src/`, source).
fn graphs(files: &[(String, String)]) -> Graphs {
    let mut modules: BTreeSet<ModulePath> = BTreeSet::new();
    let mut all = Vec::new();
    for (file, source) in files {
        let module = module_of(Path::new(file));
        let (refs, inline) = references(&module, source);
        modules.insert(module);
        modules.extend(inline);
        all.extend(refs.into_iter().map(|r| (file.clone(), r)));
    }
    let mut graphs = Graphs::new();
    for (file, r) in all {
        // the module the path ends in: its longest prefix that is a module
        let Some(target) = (0..=r.to.len())
            .rev()
            .map(|n| &r.to[..n])
            .find(|prefix| modules.contains(*prefix))
        else {
            continue;
        };
        let common = r
            .from
            .iter()
            .zip(target)
            .take_while(|(a, b)| a == b)
            .count();
        // an edge only between two different children of the common ancestor
        let (Some(from), Some(to)) = (r.from.get(common), target.get(common)) else {
            continue;
        };
        graphs
            .entry(r.from[..common].to_vec())
            .or_default()
            .entry(from.clone())
            .or_default()
            .entry(to.clone())
            .or_insert_with(|| format!("{file}:{} uses {}", r.line, r.written));
    }
    graphs
}

/// A cycle in `graph`, as the modules along it (the first repeated at the end).
fn find_cycle(graph: &BTreeMap<String, BTreeMap<String, Evidence>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, Evidence>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(|edges| edges.keys()) {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// Every cycle found, one per parent module, with the line behind each edge.
fn cycles(files: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (parent, graph) in graphs(files) {
        if let Some(cycle) = find_cycle(&graph) {
            let parent = if parent.is_empty() {
                "crate".to_owned()
            } else {
                format!("crate::{}", parent.join("::"))
            };
            let edges: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("  {} -> {}: {}", w[0], w[1], graph[&w[0]][&w[1]]))
                .collect();
            found.push(format!(
                "import cycle among the modules of {parent}: {}\n{}",
                cycle.join(" -> "),
                edges.join("\n")
            ));
        }
    }
    found
}

/// The library's source files, relative to `src/`, sorted.
fn library_sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, src: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("read harness/src") {
            let path = entry.expect("directory entry").path();
            let relative = path.strip_prefix(src).expect("under src").to_owned();
            if relative == Path::new("main.rs") || relative == Path::new("cli") {
                continue;
            }
            if path.is_dir() {
                walk(&path, src, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).expect("read a source file");
                out.push((relative.to_string_lossy().replace('\\', "/"), source));
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    walk(&src, &src, &mut out);
    out.sort();
    out
}

#[test]
fn the_harness_modules_import_each_other_without_cycles() {
    let files = library_sources();
    assert!(
        files.iter().any(|(f, _)| f == "runner/mod.rs"),
        "the scan found the sources"
    );
    let graphs = graphs(&files);
    // the scan sees real edges, so an empty result means something
    assert!(
        graphs[&Vec::new()]["verdict"].contains_key("client"),
        "verdict uses client's Outcome: {graphs:#?}"
    );
    let found = cycles(&files);
    assert!(found.is_empty(), "{}", found.join("\n\n"));
}

/// The modules `lib.rs` declares, and those its docs list (``//! - [`name`]: ...``) in order.
fn declared_and_listed(lib: &str) -> (BTreeSet<String>, Vec<String>) {
    let declared = lib
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("pub mod ")
                .or(l.trim().strip_prefix("mod "))
        })
        .map(|l| l.trim_end_matches(';').to_owned())
        .collect();
    let listed = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//! - [`"))
        .filter_map(|l| l.split_once("`]").map(|(name, _)| name.to_owned()))
        .collect();
    (declared, listed)
}

/// Edges that go down the documented order (a module using one listed after it).
fn against_the_order(graphs: &Graphs, listed: &[String]) -> Vec<String> {
    let position = |m: &str| listed.iter().position(|l| l == m);
    let mut wrong = Vec::new();
    for (from, edges) in graphs.get(&Vec::new()).into_iter().flatten() {
        for (to, evidence) in edges {
            if let (Some(a), Some(b)) = (position(from), position(to))
                && b > a
            {
                wrong.push(format!("{from} uses {to}, listed after it ({evidence})"));
            }
        }
    }
    wrong
}

#[test]
fn lib_rs_lists_every_module_in_an_order_that_only_looks_up() {
    let files = library_sources();
    let lib = &files.iter().find(|(f, _)| f == "lib.rs").expect("lib.rs").1;
    let (declared, listed) = declared_and_listed(lib);
    let listed_set: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(
        declared, listed_set,
        "lib.rs declares these modules, its docs list those"
    );
    let wrong = against_the_order(&graphs(&files), &listed);
    assert!(
        wrong.is_empty(),
        "lib.rs lists modules so that each uses only those above it:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn a_module_using_one_listed_below_it_is_reported() {
    let lib = "//! - [`a`]: first\n//! - [`b`]: second\n\npub mod a;\nmod b;\n";
    let (declared, listed) = declared_and_listed(lib);
    assert_eq!(declared, BTreeSet::from(["a".to_owned(), "b".to_owned()]));
    assert_eq!(listed, ["a", "b"]);
    let files = [
        file("lib.rs", lib),
        file("a.rs", "use crate::b::X;\n"),
        file("b.rs", ""),
    ];
    assert_eq!(
        against_the_order(&graphs(&files), &listed),
        ["a uses b, listed after it (a.rs:1 uses crate::b::X)"]
    );
}

fn file(name: &str, source: &str) -> (String, String) {
    (name.to_owned(), source.to_owned())
}

#[test]
fn a_cycle_between_top_level_modules_is_found_with_its_lines() {
    let files = [
        file("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
        file("a.rs", "use crate::b::Thing;\n"),
        file("b.rs", "\nfn f() { crate::c::g() }\n"),
        file("c.rs", "use crate::{a::{self, Other}, b};\n"),
    ];
    let found = cycles(&files);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("import cycle among the modules of crate: a -> b -> c -> a"),
        "{}",
        found[0]
    );
    assert!(
        found[0].contains("b -> c: b.rs:2 uses crate::c::g"),
        "{}",
        found[0]
    );
}

#[test]
fn super_paths_between_siblings_are_edges_and_paths_to_the_parent_are_not() {
    let files = [
        file(
            "runner/mod.rs",
            "mod sim;\nmod tcp;\npub struct Run;\nuse tcp::X;\n",
        ),
        file("runner/sim.rs", "use super::Run;\n"),
        file("runner/tcp.rs", "use super::sim::Helper;\n"),
        file("runner/director.rs", "use super::super::runner::tcp::X;\n"),
    ];
    let graphs = graphs(&files);
    let runner = &graphs[&vec!["runner".to_owned()]];
    assert_eq!(runner["tcp"].keys().collect::<Vec<_>>(), ["sim"]);
    assert_eq!(runner["director"].keys().collect::<Vec<_>>(), ["tcp"]);
    assert!(
        !runner.contains_key("sim"),
        "sim -> runner is child to parent"
    );
    assert!(cycles(&files).is_empty());
}

#[test]
fn comments_strings_and_visibility_are_not_paths_and_inline_modules_are_scopes() {
    let files = [
        file("lib.rs", ""),
        file(
            "a.rs",
            concat!(
                "//! see [`B`](crate::b::B)\n",
                "/* crate::b::C /* nested */ crate::b::D */\n",
                "pub(crate) fn f<'x>(s: &'x str) -> char { let _ = \"crate::b::E\"; ",
                "let _ = r#\"crate::b::F\"#; let _ = '\\''; '\"' }\n",
                "#[cfg(test)]\nmod tests {\n    use super::*;\n    use super::super::c::G;\n}\n",
            ),
        ),
        file("b.rs", "use crate::a::f;\n"),
        file("c.rs", ""),
    ];
    let graphs = graphs(&files);
    let root = &graphs[&Vec::new()];
    assert_eq!(root["a"].keys().collect::<Vec<_>>(), ["c"], "{graphs:#?}");
    assert_eq!(root["a"]["c"], "a.rs:7 uses crate::c::G");
    assert!(cycles(&files).is_empty());
}
