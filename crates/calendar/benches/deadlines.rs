//! Recomputes 1,000,000 working-day deadlines against changed calendar data, on one thread,
//! and prints the figure beside its baseline (the same number of plain calendar-day additions)
//! measured in the same run.
//!
//!     cargo bench -p banli-calendar --bench deadlines

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use banli_calendar::{Calendar, Deadline, DurationSpec, OutOfRangePolicy};

const N: usize = 1_000_000;

/// A small deterministic generator, so every run measures the same work.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed());
        out = Some(r);
    }
    (best, out.expect("runs > 0"))
}

fn main() {
    let cal = Calendar::embedded();
    let none = BTreeMap::new();
    // Changed data: the 2020 National Day make-up Saturday withdrawn, as a corrected notice would.
    let changed_text = include_str!("../data/prc-holidays.toml")
        .replace(
            r#"makeup = ["2020-09-27", "2020-10-10"]"#,
            r#"makeup = ["2020-09-27"]"#,
        )
        .replace(r#"version = "2026.1""#, r#"version = "bench.2""#);
    let changed = Calendar::from_toml_str("bench", &changed_text).expect("valid data");

    let mut rng = SplitMix(2020);
    let span = (cal.last_day() - cal.first_day()).whole_days() as u64 - 120;
    let inputs: Vec<(time::Date, u32)> = (0..N)
        .map(|_| {
            let start = cal.first_day() + time::Duration::days((rng.next() % span) as i64);
            (start, 5 + (rng.next() % 16) as u32)
        })
        .collect();
    let deadlines: Vec<Deadline> = inputs
        .iter()
        .map(|&(start, days)| {
            Deadline::compute(
                cal,
                "assignment",
                start,
                &DurationSpec::WorkingDays { days },
                OutOfRangePolicy::Refuse,
                &none,
            )
            .expect("in range")
        })
        .collect();

    let (baseline, base_sum) = best_of(5, || {
        inputs
            .iter()
            .map(|&(start, days)| {
                black_box(start + time::Duration::days(i64::from(black_box(days)))).to_julian_day()
                    as i64
            })
            .sum::<i64>()
    });
    let (add_only, add_sum) = best_of(5, || {
        inputs
            .iter()
            .map(|&(start, days)| {
                black_box(cal.add_working_days(start, black_box(days)))
                    .map_or(0, |d| d.to_julian_day() as i64)
            })
            .sum::<i64>()
    });
    let (recompute, changed_count) = best_of(3, || {
        deadlines
            .iter()
            .filter(|d| {
                black_box(d.recompute(&changed, OutOfRangePolicy::Refuse, &none))
                    .expect("in range")
                    .is_some()
            })
            .count()
    });
    black_box((base_sum, add_sum));

    let per_sec = |d: Duration| N as f64 / d.as_secs_f64();
    println!("deadline arithmetic, {N} deadlines, one thread (best of several runs)");
    println!(
        "  baseline: plain calendar-day additions        {:>8.1} ms  ({:>6.1} M/s)",
        baseline.as_secs_f64() * 1e3,
        per_sec(baseline) / 1e6
    );
    println!(
        "  working-day additions (no trace)              {:>8.1} ms  ({:>6.1} M/s)",
        add_only.as_secs_f64() * 1e3,
        per_sec(add_only) / 1e6
    );
    println!(
        "  recompute working-day deadlines on new data   {:>8.1} ms  ({:>6.1} M/s; {changed_count} moved, their traces rebuilt)",
        recompute.as_secs_f64() * 1e3,
        per_sec(recompute) / 1e6
    );
    println!(
        "  target: recompute {N} in < 1000 ms — {}",
        if recompute < Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
}
