use anemone_drivers::pulse::{Edge, PulseCounter};
use anemone_drivers::rain_gauge::RainGauge;
use proptest::prelude::*;

/// A square wave with `periods` periods of `period_us`, starting high; every real edge is
/// followed by `bounce[k]` extra toggle pairs at the given offsets (all < 1 ms) so the line
/// settles at the real edge's level.
fn bouncy_train(period_us: u64, periods: u64, bounce: &[Vec<u64>]) -> Vec<Edge> {
    let mut edges = Vec::new();
    let mut k = 0;
    for n in 0..periods {
        for (half, rising) in [(0, false), (1, true)] {
            let t0 = 10_000 + n * period_us + half * period_us / 2;
            edges.push(Edge { ts_us: t0, rising });
            let offs = &bounce[k % bounce.len()];
            k += 1;
            // Each offset is a toggle pair: away from the settled level and back.
            let mut offs: Vec<u64> = offs.clone();
            offs.sort_unstable();
            for pair in offs.chunks(2) {
                if let [a, b] = pair {
                    edges.push(Edge {
                        ts_us: t0 + a,
                        rising: !rising,
                    });
                    edges.push(Edge {
                        ts_us: t0 + b,
                        rising,
                    });
                }
            }
        }
    }
    edges
}

#[test]
fn square_200hz_with_1ms_bounce_counts_exactly() {
    // Several extra toggles within 1 ms after every real edge.
    let bounce = vec![
        vec![50, 120, 300, 420, 700, 999],
        vec![10, 20, 30, 40, 500, 990],
        vec![200, 800],
    ];
    let edges = bouncy_train(5_000, 200, &bounce);
    let mut c = PulseCounter::new(1000);
    let mut starts = Vec::new();
    for e in &edges {
        if let Some(ts) = c.edge(*e) {
            starts.push(ts);
        }
    }
    assert_eq!(c.count(), 200);
    assert_eq!(starts.len(), 200);
    for (n, ts) in starts.iter().enumerate() {
        assert_eq!(*ts, 10_000 + n as u64 * 5_000);
    }
}

#[test]
fn rain_gauge_counts_a_bouncy_shower() {
    let bounce = vec![vec![100, 200, 300, 900]];
    let edges = bouncy_train(2_000_000, 50, &bounce);
    let mut g = RainGauge::new(0.2794, 1000, 500_000);
    let tips = edges.iter().filter_map(|e| g.edge(*e)).count();
    assert_eq!(tips, 50);
    assert_eq!(g.total_tips(), 50);
}

proptest! {
    #[test]
    fn random_bounce_within_bound_counts_exactly(
        periods in 1u64..60,
        period_us in 4_100u64..50_000,
        bounce in prop::collection::vec(prop::collection::vec(1u64..1000, 0..8), 1..20),
    ) {
        let edges = bouncy_train(period_us, periods, &bounce);
        let mut c = PulseCounter::new(1000);
        for e in &edges {
            c.edge(*e);
        }
        prop_assert_eq!(c.count(), periods);
    }

    #[test]
    fn arbitrary_edges_never_panic(
        debounce in any::<u32>(),
        edges in prop::collection::vec((any::<u64>(), any::<bool>()), 0..100),
    ) {
        let mut c = PulseCounter::new(debounce);
        let mut g = RainGauge::new(0.2794, debounce, 1_000);
        let mut n = 0;
        for (ts_us, rising) in edges {
            let e = Edge { ts_us, rising };
            if c.edge(e).is_some() { n += 1; }
            let before = g.total_tips();
            g.edge(e);
            prop_assert!(g.total_tips() >= before);
        }
        prop_assert_eq!(c.count(), n);
    }
}
