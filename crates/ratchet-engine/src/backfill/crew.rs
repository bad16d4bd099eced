//! The backfill's workers as a crew that can grow while it runs: `ratchet set workers N`
//! above the count it started with opens more sessions. A new worker takes a slice
//! nobody walks yet; when there is none, the unfinished part of a running slice is cut
//! in two (in the state schema first, in one transaction, then in the memory of the
//! worker that walks it), and the new worker takes the second half.
//!
//! Cutting is safe while the other worker runs: a batch it started before it saw the
//! new upper bound may go past it, and those rows are then found filled by the new
//! worker (a batch only updates rows whose new column is still NULL), so nothing is done
//! twice and nothing is missed.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio_postgres::Client;

use super::*;

/// A worker's future, whichever session it owns or borrows.
pub(crate) type Walker<'a> = Pin<Box<dyn Future<Output = Result<(), EngineError>> + Send + 'a>>;

/// How often the crew looks at the operator's worker count.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// Run `walkers` to the end, adding workers while the operator asks for more than are
/// alive and there is a slice for them. The first error stops the others (after their
/// batch) and is returned.
pub(crate) async fn run<'a>(
    sh: &'a Shared<'a>,
    url: &'a str,
    config: &'a Config,
    walkers: Vec<Walker<'a>>,
) -> Result<(), EngineError> {
    let mut crew: FuturesUnordered<Walker<'a>> = walkers.into_iter().collect();
    let mut first_error = None;
    let mut look = tokio::time::interval(LOOK_EVERY);
    look.tick().await;
    loop {
        tokio::select! {
            done = crew.next() => match done {
                None => break,
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    sh.stop.store(true, Ordering::SeqCst);
                    first_error.get_or_insert(e);
                }
            },
            _ = look.tick() => {
                if sh.stop.load(Ordering::SeqCst) {
                    continue;
                }
                match grow(sh, url, config).await {
                    Ok(Some(w)) => crew.push(w),
                    Ok(None) => {}
                    // Growing is best effort: the workers that run go on.
                    Err(e) => sh.reporter.report(&Event::Info(format!(
                        "warning: could not add a backfill worker: {e}"
                    ))),
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One more worker, when the operator wants more than are alive and there is work for
/// it (a waiting slice, or a running one big enough to cut).
async fn grow<'a>(
    sh: &'a Shared<'a>,
    url: &str,
    config: &Config,
) -> Result<Option<Walker<'a>>, EngineError> {
    let Some(wanted) = sh.throttle.overrides().workers else {
        return Ok(None);
    };
    let Some(index) = sh.free_index(wanted) else {
        return Ok(None);
    };
    let queued = !lock(&sh.queue).is_empty();
    let running = sh.running_slices();
    if !queued && running.is_empty() {
        return Ok(None);
    }
    let client = crate::session::open(url).await?;
    crate::session::setup_session(&client, config).await?;
    if !queued && !cut_a_running_slice(sh, &client, &running).await? {
        return Ok(None);
    }
    sh.reporter.report(&Event::Info(format!(
        "backfill of {}: worker {} joins (`ratchet set workers {wanted}`)",
        sh.spec.table,
        index + 1
    )));
    sh.enlist(index);
    Ok(Some(Box::pin(async move {
        let mut client = client;
        let r = worker(&mut client, sh, index).await;
        sh.discharge(index);
        r
    })))
}

/// Cut the first running slice that is big enough in two; the second half waits in the
/// queue. False when none is.
async fn cut_a_running_slice(
    sh: &Shared<'_>,
    client: &Client,
    running: &[Slice],
) -> Result<bool, EngineError> {
    for slice in running {
        let points = split_points(client, sh.spec, slice, (2, sh.rows_per_page)).await?;
        let Some(point) = points.into_iter().next() else {
            continue;
        };
        let next_id = sh
            .state
            .slices(client, sh.m.id, sh.step)
            .await?
            .iter()
            .map(|s| s.id)
            .max()
            .unwrap_or(0)
            + 1;
        let second = Slice {
            id: next_id,
            cursor: Some(point.clone()),
            upper: slice.upper.clone(),
            batch: slice.batch,
            done: false,
        };
        let store = |e| EngineError::db("cutting a running backfill slice", e);
        client.batch_execute("BEGIN").await.map_err(store)?;
        let cut = async {
            sh.state
                .set_slice_upper(client, sh.m.id, sh.step, slice.id, &point)
                .await?;
            sh.state
                .insert_slice(client, sh.m.id, sh.step, &second)
                .await
        };
        if let Err(e) = cut.await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(e);
        }
        client.batch_execute("COMMIT").await.map_err(store)?;
        sh.shrink(slice.id, point);
        lock(&sh.queue).push_back(second);
        return Ok(true);
    }
    Ok(false)
}
