//! The timing policy, on paused tokio time.

use std::time::Duration;

use tokio::time::Instant;

use super::*;

const MIN: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn the_first_round_is_fast_then_credentials_spread_over_the_interval() {
    let mut rng = fastrand::Rng::with_seed(7);
    let epoch = Instant::now();
    let mut seconds = Vec::new();
    for _ in 0..200 {
        let mut p = Pacer::new(MIN, &mut rng);
        let first = p.first_delay(&mut rng);
        assert!(
            first <= STARTUP_SPREAD,
            "first check within the startup spread"
        );
        let started = epoch + first;
        let second = p.next(epoch, started, Paced::Definitive, &mut rng);
        assert!(second >= started + MIN, "never faster than the interval");
        assert!(
            second <= epoch + 2 * MIN,
            "the second check lands within the next interval"
        );
        seconds.push((second - epoch - MIN).as_secs());
    }
    // Spread: every 10-second bucket of the interval gets some credentials.
    for bucket in 0..6 {
        let n = seconds.iter().filter(|s| **s / 10 == bucket).count();
        assert!(n >= 10, "bucket {bucket} has {n} of 200: {seconds:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn steady_state_keeps_the_interval() {
    let mut rng = fastrand::Rng::with_seed(1);
    let epoch = Instant::now();
    let mut p = Pacer::new(MIN, &mut rng);
    let mut at = p.next(epoch, epoch, Paced::Definitive, &mut rng);
    for _ in 0..10 {
        tokio::time::advance(at - Instant::now()).await;
        let next = p.next(epoch, Instant::now(), Paced::Definitive, &mut rng);
        assert_eq!(next - at, MIN);
        at = next;
    }
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_exponentially_within_bounds_and_reset_on_success() {
    let mut rng = fastrand::Rng::with_seed(3);
    let epoch = Instant::now();
    let mut p = Pacer::new(MIN, &mut rng);
    let mut waits = Vec::new();
    for _ in 0..8 {
        let now = Instant::now();
        let next = p.next(epoch, now, Paced::Failed { retry_after: None }, &mut rng);
        let wait = next - now;
        assert!(wait >= MIN, "never faster than the interval: {wait:?}");
        assert!(wait <= MAX_BACKOFF.mul_f64(1.2), "bounded: {wait:?}");
        waits.push(wait);
        tokio::time::advance(wait).await;
    }
    assert!(
        waits[1] > waits[0] && waits[2] > waits[1],
        "grows: {waits:?}"
    );
    assert!(waits[7] >= MAX_BACKOFF, "reaches the cap: {waits:?}");
    assert_eq!(p.failures(), 8);
    let now = Instant::now();
    assert_eq!(p.next(epoch, now, Paced::Definitive, &mut rng) - now, MIN);
    assert_eq!(p.failures(), 0);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_but_never_shortens_the_interval() {
    let mut rng = fastrand::Rng::with_seed(5);
    let epoch = Instant::now();
    let mut p = Pacer::new(MIN, &mut rng);
    let now = Instant::now();
    let long = p.next(
        epoch,
        now,
        Paced::Failed {
            retry_after: Some(Duration::from_secs(300)),
        },
        &mut rng,
    );
    assert!(long - now >= Duration::from_secs(300));
    let mut p = Pacer::new(MIN, &mut rng);
    let short = p.next(
        epoch,
        now,
        Paced::Failed {
            retry_after: Some(Duration::from_secs(1)),
        },
        &mut rng,
    );
    assert!(short - now >= MIN);
}
