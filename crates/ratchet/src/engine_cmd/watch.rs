//! `ratchet status --watch`: the status block of the migration another process runs,
//! redrawn every `--interval` from the state schema, until the migration leaves the
//! active phase or Ctrl-C; with `--format json`, one JSON object per tick on stdout.

use std::time::Duration;

use ratchet_engine::Engine;

use super::args::Format;
use crate::live::render;
use crate::live::watch::{finished, live_of, Rates, EVENTS};
use crate::output::line;

pub async fn watch(engine: &Engine, interval: Duration, format: Format) -> anyhow::Result<i32> {
    use std::io::IsTerminal;
    let tty = format == Format::Text && std::io::stdout().is_terminal();
    let mut rates = Rates::default();
    let mut drawn = 0usize;
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(50)));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(0),
        }
        let view = engine.live_view(EVENTS).await?;
        let live = live_of(&view, &mut rates);
        match format {
            Format::Json => {
                let mut v = render::live_json(&live);
                v["active"] = serde_json::json!(!finished(&view));
                v["backfills"] = serde_json::to_value(&view.backfills)?;
                v["controls"] = serde_json::to_value(&view.controls)?;
                line(v.to_string());
            }
            Format::Text => {
                let lines = render::block(&live);
                if tty && drawn > 0 {
                    // Back to the top of the previous block, and clear down from there.
                    line(format!("\x1b[{drawn}A\x1b[J{}", lines.join("\n")));
                } else if drawn > 0 {
                    // Not a terminal: one block after the other, a blank line between.
                    line(format!("\n{}", lines.join("\n")));
                } else {
                    line(lines.join("\n"));
                }
                drawn = lines.len();
            }
        }
        if finished(&view) {
            return Ok(0);
        }
    }
}
