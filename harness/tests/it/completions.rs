//! `lastwill completions SHELL` and `lastwill man`: generated from the clap definitions, so
//! they know every subcommand and flag. The bash script is run in bash and asked to complete,
//! and the manual pages are rendered by `man`.

use std::path::Path;
use std::process::{Command, Output};

const SUBCOMMANDS: &[&str] = &[
    "broker",
    "run",
    "explain",
    "coverage",
    "matrix",
    "bench",
    "completions",
    "man",
];

fn lastwill(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_lastwill"))
        .args(args)
        .output()
        .expect("run lastwill");
    assert!(
        output.status.success(),
        "lastwill {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lastwill-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What bash's programmable completion offers for `words` (the last one being completed).
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|word| format!("'{word}'")).collect();
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\n_lastwill lastwill {} {}\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        quoted[words.len() - 1],
        quoted[words.len() - 2],
    );
    let output = Command::new("bash")
        .args(["--norc", "-c", &program])
        .output()
        .expect("run bash");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_flags() {
    let dir = temp_dir("completions");
    let script = dir.join("lastwill.bash");
    std::fs::write(&script, lastwill(&["completions", "bash"]).stdout).unwrap();

    let mut offered = bash_completes(&script, &["lastwill", "ma"]);
    offered.sort();
    assert_eq!(offered, ["man", "matrix"]);
    assert_eq!(
        bash_completes(&script, &["lastwill", "run", "--ca"]),
        ["--ca-file"]
    );
    let matrix_formats = bash_completes(&script, &["lastwill", "matrix", "--format", ""]);
    assert!(
        matrix_formats.iter().any(|f| f == "markdown"),
        "{matrix_formats:?}"
    );
    let formats = bash_completes(&script, &["lastwill", "run", "--format", ""]);
    assert!(
        formats.iter().any(|f| f == "junit") && formats.iter().any(|f| f == "json"),
        "{formats:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_shell_script_knows_every_subcommand() {
    for (shell, opening) in [
        ("bash", "_lastwill() {"),
        ("zsh", "#compdef lastwill"),
        ("fish", "complete -c lastwill"),
        ("elvish", "set edit:completion:arg-completer[lastwill]"),
        (
            "powershell",
            "Register-ArgumentCompleter -Native -CommandName 'lastwill'",
        ),
    ] {
        let script = String::from_utf8(lastwill(&["completions", shell]).stdout).unwrap();
        assert!(script.contains(opening), "{shell}: no `{opening}`");
        for subcommand in SUBCOMMANDS {
            assert!(script.contains(subcommand), "{shell}: no {subcommand}");
        }
    }
    let output = Command::new(env!("CARGO_BIN_EXE_lastwill"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// `page` as `man` renders it, without a pager or terminal formatting.
fn rendered(page: &Path) -> String {
    let output = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "0")
        .output()
        .expect("run man");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // man marks bold and underline with backspaces when it writes to a pipe
    let text = String::from_utf8_lossy(&output.stdout);
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn man_pages_render_with_every_subcommand_and_flag() {
    let dir = temp_dir("man");
    let page = dir.join("printed.1");
    std::fs::write(&page, lastwill(&["man"]).stdout).unwrap();
    let text = rendered(&page);
    assert!(
        text.contains("lastwill - Conformance and simulation test harness for MQTT Will messages"),
        "{text}"
    );
    for subcommand in SUBCOMMANDS {
        assert!(
            text.contains(&format!("lastwill-{subcommand}(1)")),
            "{text}"
        );
    }

    lastwill(&["man", "--dir", dir.to_str().unwrap()]);
    assert!(dir.join("lastwill.1").exists());
    for subcommand in SUBCOMMANDS {
        assert!(
            dir.join(format!("lastwill-{subcommand}.1")).exists(),
            "{subcommand}"
        );
    }
    let run = rendered(&dir.join("lastwill-run.1"));
    for flag in ["--target", "--ca-file", "--insecure", "--format", "--seed"] {
        assert!(run.contains(flag), "lastwill-run(1) has no {flag}:\n{run}");
    }
    // the matrix takes its report flags as run and bench do
    let matrix = rendered(&dir.join("lastwill-matrix.1"));
    for flag in ["--format", "--output", "--repeat", "--profile"] {
        assert!(
            matrix.contains(flag),
            "lastwill-matrix(1) has no {flag}:\n{matrix}"
        );
    }
    assert!(!matrix.contains("--markdown"), "{matrix}");
    let _ = std::fs::remove_dir_all(&dir);
}
