//! Where `ratchet.toml` is: `--config FILE`, else `./ratchet.toml` when there is one.
//! Shared by `lint` (the `[lint]` table) and the engine commands (`[engine]`), so that
//! both read the same file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use toml::Spanned;

/// The file given with `--config`, or `./ratchet.toml` when present; `None` without
/// either (no config file is fine: defaults and flags apply).
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from("ratchet.toml")).filter(|p| p.is_file()),
    }
}

/// The text of the config file at `path` (an explicit `--config` that does not exist is
/// an error, not an empty config).
pub fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The tables `ratchet.toml` may have.
const TABLES: &[&str] = &["engine", "lint", "monitor", "gates"];

/// Refuse a top-level key other than `[engine]` and `[lint]`: each command reads only
/// its own table, so a misspelt `[engin]` would otherwise be ignored by all of them.
pub fn check_tables(path: &str, text: &str) -> anyhow::Result<()> {
    let top: BTreeMap<Spanned<String>, toml::Value> =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("invalid config {path}: {e}"))?;
    let Some((key, value)) = top
        .iter()
        .find(|(k, _)| !TABLES.contains(&k.get_ref().as_str()))
    else {
        return Ok(());
    };
    let at = format!("{path}:{}", line_of(text, key.span().start));
    let name = key.get_ref();
    if !value.is_table() {
        anyhow::bail!(
            "invalid config {at}: `{name}` stands outside any table; ratchet.toml has [engine], [monitor], [gates] and [lint] (engine settings go under [engine])"
        );
    }
    let known: Vec<String> = TABLES.iter().map(|t| t.to_string()).collect();
    let hint = ratchet_spec::closest(name, &known)
        .map(|t| format!(" (did you mean `[{t}]`?)"))
        .unwrap_or_default();
    anyhow::bail!(
        "invalid config {at}: unknown table `{name}`{hint}; ratchet.toml has [engine], [monitor], [gates] and [lint]"
    )
}

/// The `key = value` entries of one table, with where each stands in the file.
pub type Entries = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// Hand every entry of table `[name]` to `set`; a value `set` refuses is an error naming
/// the file, the line, the table and the key (`invalid config ratchet.toml:3: [engine]
/// lock_timout = "2s": unknown key …`).
pub fn apply_entries(
    path: &str,
    text: &str,
    name: &str,
    entries: Option<Entries>,
    mut set: impl FnMut(&str, &toml::Value) -> Result<(), String>,
) -> anyhow::Result<()> {
    for (key, value) in entries.unwrap_or_default() {
        let line = line_of(text, key.span().start);
        set(key.get_ref(), value.get_ref()).map_err(|e| {
            anyhow::anyhow!(
                "invalid config {path}:{line}: [{name}] {} = {}: {e}",
                key.get_ref(),
                value.get_ref()
            )
        })?;
    }
    Ok(())
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::check_tables;

    #[test]
    fn only_engine_and_lint_tables() {
        assert!(check_tables("r.toml", "[lint]\nfail_on = \"error\"\n[engine]\n").is_ok());
        let e = check_tables("r.toml", "[lint]\n\n[engin]\nwait = \"1s\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config r.toml:3: unknown table `engin` (did you mean `[engine]`?); ratchet.toml has [engine], [monitor], [gates] and [lint]"
        );
        let e = check_tables("r.toml", "\nwait = \"1s\"\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid config r.toml:2: `wait` stands outside any table"),
            "{e}"
        );
    }
}
