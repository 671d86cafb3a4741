//! Which scenarios a command takes: the `--tag` and `--name` filters of `list`, `run`,
//! `matrix` and `explore`.
//!
//! A scenario is selected when it carries one of the tags asked for (any tag, when none is)
//! and its key or its `name:` matches one of the globs asked for (anything, when none is).
//! Keys are paths under `scenarios/` without `.yaml` ([`scenario::key`]), so
//! `--name 'will-delay/*'` takes a folder and `--name '*takeover*'` every scenario whose key or
//! name mentions a takeover.

use crate::scenario::{self, Scenario};

/// A filter on scenarios; the default selects every scenario.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    tags: Vec<String>,
    names: Vec<glob::Pattern>,
}

impl Selection {
    /// Scenarios with any of `tags` whose key or name matches any of the `names` globs
    /// (`*`, `?`, `[abc]`); an empty list does not filter. A malformed glob is the error, in
    /// one line.
    pub fn new(tags: &[String], names: &[String]) -> Result<Selection, String> {
        let names = names
            .iter()
            .map(|name| glob::Pattern::new(name).map_err(|e| format!("--name `{name}`: {}", e.msg)))
            .collect::<Result<_, _>>()?;
        Ok(Selection {
            tags: tags.to_vec(),
            names,
        })
    }

    pub fn selects(&self, scenario: &Scenario) -> bool {
        let tagged = self.tags.is_empty() || self.tags.iter().any(|t| scenario.tags.contains(t));
        let key = scenario::key(&scenario.file);
        let named = self.names.is_empty()
            || self
                .names
                .iter()
                .any(|glob| glob.matches(&key) || glob.matches(&scenario.name));
        tagged && named
    }

    /// The selected scenarios, in their order.
    pub fn apply(&self, scenarios: Vec<Scenario>) -> Vec<Scenario> {
        scenarios.into_iter().filter(|s| self.selects(s)).collect()
    }

    /// The filters as they were given on the command line (empty when there are none).
    pub fn describe(&self) -> String {
        let tags = self.tags.iter().map(|t| format!("--tag {t}"));
        let names = self
            .names
            .iter()
            .map(|n| format!("--name '{}'", n.as_str()));
        tags.chain(names).collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(file: &str, name: &str, tags: &[&str]) -> Scenario {
        let source = format!(
            "name: {name}\ntags: [{}]\nclients: {{a: {{}}}}\nsteps:\n  - a: connect\n",
            tags.join(", ")
        );
        scenario::parse(&source, file).unwrap()
    }

    #[test]
    fn tags_select_any_of_them_and_globs_match_key_or_name() {
        let catalogue = [
            scenario(
                "scenarios/takeover/a.yaml",
                "old will on takeover",
                &["takeover"],
            ),
            scenario(
                "scenarios/will-delay/b.yaml",
                "delay elapses",
                &["delay", "timer"],
            ),
            scenario(
                "scenarios/will-delay/c.yaml",
                "reconnect cancels",
                &["delay"],
            ),
        ];
        let keys = |selection: &Selection| -> Vec<String> {
            catalogue
                .iter()
                .filter(|s| selection.selects(s))
                .map(|s| scenario::key(&s.file))
                .collect()
        };
        let select = |tags: &[&str], names: &[&str]| {
            let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            Selection::new(&owned(tags), &owned(names)).unwrap()
        };
        assert_eq!(keys(&Selection::default()).len(), 3);
        assert_eq!(
            keys(&select(&["timer", "takeover"], &[])),
            ["takeover/a", "will-delay/b"]
        );
        assert_eq!(
            keys(&select(&[], &["will-delay/*"])),
            ["will-delay/b", "will-delay/c"]
        );
        assert_eq!(keys(&select(&[], &["*takeover*"])), ["takeover/a"]);
        assert_eq!(keys(&select(&["delay"], &["*cancels"])), ["will-delay/c"]);
        assert!(keys(&select(&["nothing"], &[])).is_empty());
        assert_eq!(
            select(&["delay"], &["will-*"]).describe(),
            "--tag delay --name 'will-*'"
        );
    }

    #[test]
    fn a_malformed_glob_is_one_line() {
        let error = Selection::new(&[], &["[unclosed".to_owned()]).unwrap_err();
        assert!(error.starts_with("--name `[unclosed`: "), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }
}
