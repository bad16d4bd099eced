//! `ratchet lint`, `ratchet explain` and `ratchet convert`: thin wrappers over `ratchet-lint`.

#[derive(clap::Args, Debug)]
pub struct LintArgs {}
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {}
#[derive(clap::Args, Debug)]
pub struct ConvertArgs {}

pub fn run_lint(_a: &LintArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not implemented yet")
}
pub fn run_explain(_a: &ExplainArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not implemented yet")
}
pub fn run_convert(_a: &ConvertArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not implemented yet")
}
