//! Adaptive batch sizes.

use std::time::Duration;

use super::*;

pub(crate) fn next_batch_size(current: i64, took: Duration, cfg: &BackfillConfig) -> i64 {
    let target = cfg.target.as_secs_f64();
    let took = took.as_secs_f64().max(0.0001);
    let next = if took > target {
        // Too slow: shrink at once, in proportion.
        (current as f64 * target / took * 0.9) as i64
    } else if took < target * 0.25 {
        // Far below the target (the first batches): double.
        current * 2
    } else if took < target * 0.7 {
        // Comfortably fast: grow slowly.
        (current as f64 * 1.25).ceil() as i64
    } else {
        current
    };
    next.clamp(cfg.min, cfg.max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_size_shrinks_at_once_and_grows_slowly() {
        let cfg = BackfillConfig::default();
        assert!(next_batch_size(1000, Duration::from_millis(800), &cfg) < 300);
        assert_eq!(next_batch_size(1000, Duration::from_millis(40), &cfg), 2000);
        assert_eq!(
            next_batch_size(1000, Duration::from_millis(100), &cfg),
            1250
        );
        assert_eq!(
            next_batch_size(1000, Duration::from_millis(180), &cfg),
            1000
        );
        assert_eq!(next_batch_size(10, Duration::from_secs(5), &cfg), cfg.min);
    }
}
