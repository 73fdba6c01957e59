//! A soak: lifecycles offered at half of the measured saturation, open loop, for many minutes;
//! every window the bench samples each consumer's lag (p99 over the window from the lag
//! histograms on `/metrics`, and the events still behind), the server's RSS and open sockets
//! (summed over its processes), and the commands' p99 and refusals. At the end it fits a line
//! through each series after the first minute (warm-up: caches and the allocator fill) and
//! prints the slope per minute beside the series' mean: a flat line is the goal.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::client::Http;
use crate::{
    Backend, COMMANDS_PER_LIFECYCLE, Mode, Run, World, closed_loop, collect, lag_quantile, ms,
    one_lifecycle, pct, scrape_lag, sorted, start,
};

/// One window's figures.
#[derive(Debug, Clone, Copy)]
struct Sample {
    minute: f64,
    commands_per_s: f64,
    p99_ms: f64,
    refused: u64,
    in_flight: usize,
    lag_p99_ms: f64,
    behind: u64,
    rss_mib: f64,
    sockets: u64,
}

pub async fn run(backend: Backend, mode: Mode, minutes: u64, rate: Option<f64>) -> Result<()> {
    let (server, http, world, on) = start(backend, mode).await?;
    let rate = match rate {
        Some(r) => r,
        None => {
            let sat = saturation(&http, &world).await?;
            println!(
                "\n== soak on {on}: saturation measured first: {sat:.0} commands/s (32 clients, 20 s)"
            );
            sat / 2.0
        }
    };
    println!(
        "== soak on {on}: {rate:.0} commands/s offered, open loop, for {minutes} min; a sample every {} s",
        window(minutes).as_secs()
    );
    println!(
        "  {:>6} {:>9} {:>8} {:>7} {:>8} {:>10} {:>7} {:>8} {:>8}",
        "minute",
        "cmds/s",
        "p99 ms",
        "refused",
        "inflight",
        "lag p99ms",
        "behind",
        "RSS MiB",
        "sockets"
    );

    let done: Arc<Mutex<Vec<Run>>> = Arc::default();
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let duration = Duration::from_secs(minutes * 60);
    let every_lifecycle = Duration::from_secs_f64(COMMANDS_PER_LIFECYCLE as f64 / rate);
    let start = Instant::now();
    let offer = {
        let (http, world, done, in_flight) =
            (http.clone(), world.clone(), done.clone(), in_flight.clone());
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every_lifecycle);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut tasks = Vec::new();
            let mut n = 0;
            while start.elapsed() < duration {
                ticker.tick().await;
                n += 1;
                let (http, world, done, in_flight) =
                    (http.clone(), world.clone(), done.clone(), in_flight.clone());
                in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tasks.push(tokio::spawn(async move {
                    let mut run = Run::default();
                    let r = one_lifecycle(&http, &world, 700_000_000 + n, &mut run).await;
                    in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    match r? {
                        true => run.lifecycles += 1,
                        false => run.incomplete += 1,
                    }
                    done.lock()
                        .map_err(|_| anyhow::anyhow!("poisoned"))?
                        .push(run);
                    anyhow::Ok(Run::default())
                }));
            }
            collect(tasks).await
        })
    };

    let mut samples = Vec::new();
    let mut lag_before = scrape_lag(&http, &server.office_key).await?;
    let mut window_start = Instant::now();
    while start.elapsed() < duration {
        tokio::time::sleep(window(minutes).min(duration.saturating_sub(start.elapsed()))).await;
        let runs: Vec<Run> =
            std::mem::take(&mut *done.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
        let mut run = Run::default();
        for r in runs {
            run.absorb(r);
        }
        let every = sorted(&run.lat);
        let secs = window_start.elapsed().as_secs_f64();
        window_start = Instant::now();
        let lag_now = scrape_lag(&http, &server.office_key).await?;
        let lag_p99_ms = lag_now
            .iter()
            .map(|(c, now)| lag_quantile(now, lag_before.get(c), 0.99).unwrap_or(0.0))
            .fold(0.0, f64::max);
        lag_before = lag_now;
        let s = Sample {
            minute: start.elapsed().as_secs_f64() / 60.0,
            commands_per_s: every.len() as f64 / secs,
            p99_ms: ms(pct(&every, 0.99)),
            refused: run.refused.values().map(|(n, _)| n).sum(),
            in_flight: in_flight.load(std::sync::atomic::Ordering::Relaxed),
            lag_p99_ms,
            behind: behind(&http, &server.office_key).await?,
            rss_mib: server
                .pids()
                .iter()
                .map(|p| rss_kib(*p))
                .sum::<Result<u64>>()? as f64
                / 1024.0,
            sockets: server
                .pids()
                .iter()
                .map(|p| sockets(*p))
                .sum::<Result<u64>>()?,
        };
        println!(
            "  {:>6.1} {:>9.1} {:>8.1} {:>7} {:>8} {:>10} {:>7} {:>8.1} {:>8}",
            s.minute,
            s.commands_per_s,
            s.p99_ms,
            s.refused,
            s.in_flight,
            s.lag_p99_ms,
            s.behind,
            s.rss_mib,
            s.sockets
        );
        if s.refused > 0 {
            run.print_refusals();
        }
        samples.push(s);
    }
    offer.await??;

    let steady: Vec<Sample> = samples.iter().copied().filter(|s| s.minute > 1.0).collect();
    println!(
        "  -- slopes after the first minute (least squares; goal: no upward slope in lag or RSS)"
    );
    type Series = (&'static str, fn(&Sample) -> f64);
    let series: [Series; 5] = [
        ("consumer lag p99 (ms)", |s| s.lag_p99_ms),
        ("events behind", |s| s.behind as f64),
        ("RSS (MiB)", |s| s.rss_mib),
        ("open sockets", |s| s.sockets as f64),
        ("commands p99 (ms)", |s| s.p99_ms),
    ];
    for (name, f) in series {
        let points: Vec<(f64, f64)> = steady.iter().map(|s| (s.minute, f(s))).collect();
        let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len().max(1) as f64;
        match slope(&points) {
            Some(k) => println!(
                "  {name:<24} mean {mean:>9.1}   slope {k:>+9.2} per minute ({:+.1}% of the mean per minute)",
                if mean.abs() > f64::EPSILON {
                    100.0 * k / mean
                } else {
                    0.0
                }
            ),
            None => println!("  {name:<24} too few samples for a slope"),
        }
    }
    let refused: u64 = samples.iter().map(|s| s.refused).sum();
    println!("  refused commands over the soak: {refused} (goal 0; nothing is retried)");
    server.stop().await
}

/// Samples: about 20 per run, at least 10 s apart.
fn window(minutes: u64) -> Duration {
    Duration::from_secs((minutes * 3).max(10))
}

/// Closed loop, 32 clients, 20 s: commands per second.
async fn saturation(http: &Http, world: &World) -> Result<f64> {
    let start = Instant::now();
    let run = closed_loop(http, world, 32, Duration::from_secs(20), 800_000_000).await?;
    Ok(sorted(&run.lat).len() as f64 / start.elapsed().as_secs_f64())
}

/// Events on the bus not yet handled, summed over the consumers (`banli_consumer_lag`).
async fn behind(http: &Http, key: &str) -> Result<u64> {
    let mut total = 0;
    for base in http.bases() {
        for line in http.get_text(&base, "/metrics", key).await?.lines() {
            if let Some(rest) = line.strip_prefix("banli_consumer_lag{") {
                let v = rest.rsplit(' ').next().context("a gauge's value")?;
                total += v.parse::<u64>()?;
            }
        }
    }
    Ok(total)
}

fn rss_kib(pid: u32) -> Result<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS in /proc/<pid>/status")
}

/// Open sockets of a process: HTTP and gRPC connections, database and NATS connections.
fn sockets(pid: u32) -> Result<u64> {
    let mut n = 0;
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        if std::fs::read_link(fd?.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
        {
            n += 1;
        }
    }
    Ok(n)
}

/// Least-squares slope of y over x; `None` with fewer than three points.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_of_a_line_is_its_slope() {
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 3.0 + 2.0 * f64::from(i)))
            .collect();
        let k = slope(&pts).expect("enough points");
        assert!((k - 2.0).abs() < 1e-9, "{k}");
        assert_eq!(slope(&pts[..2]), None);
    }

    #[test]
    fn a_window_p99_counts_only_the_window() {
        let before = vec![(10.0, 100), (100.0, 100), (f64::INFINITY, 100)];
        // 100 new events: 98 under 10 ms, 2 under 100 ms → p99 is in the 100 ms bucket.
        let now = vec![(10.0, 198), (100.0, 200), (f64::INFINITY, 200)];
        assert_eq!(lag_quantile(&now, Some(&before), 0.99), Some(100.0));
        assert_eq!(lag_quantile(&now, Some(&before), 0.5), Some(10.0));
        assert_eq!(lag_quantile(&before, Some(&before), 0.99), None);
    }
}
