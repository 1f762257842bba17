//! Envelope's benchmark harness.
//!
//! ```text
//! envelope-bench cache  [--threads N | --tasks N] [--size B] [--suite HEX] [--contexts N]
//!                       [--max-age S] [--max-messages N] [--max-bytes N] [--capacity N]
//!                       [--latency-ms F] [--rate-limit N] [--duration S | --messages N]
//!                       [--decrypt] [--no-baseline] [--json]
//! envelope-bench sweep  --param threads|max-messages|size|latency --values 1,2,4 [cache options] --out DIR
//! envelope-bench plan   --rate N [--size B] [--cost-per-call $] [--latency-ms F]
//!                       [--budget $] [--max-calls-per-second N] [--max-bytes B] [--burst S/PERIOD]
//! envelope-bench plan --examples
//! envelope-bench floor  [--seconds F] [--json]
//! envelope-bench large  [--mib N] [--rounds N] [--suite 0478,0578] [--json]
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use envelope::AlgorithmSuite;
use envelope::cache::RefreshAhead;

use envelope_bench::load::{self, CacheReport, LoadResult, LoadSpec};
use envelope_bench::{fleet, floor, large, parse, plan, sweep};

#[derive(Parser)]
#[command(
    name = "envelope-bench",
    about = "Envelope's benchmark harness: caching throughput, master-key calls saved, cache planning and primitive costs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Encrypt (and optionally decrypt) load through a caching CMM over a simulated master key,
    /// then the same load without the cache.
    Cache {
        #[command(flatten)]
        load: LoadArgs,
        /// Skip the run without cache.
        #[arg(long)]
        no_baseline: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run `cache` over a range of one parameter; write sweep.csv and sweep.svg.
    Sweep {
        #[command(flatten)]
        load: LoadArgs,
        /// The parameter to vary.
        #[arg(long, value_enum)]
        param: sweep::Parameter,
        /// Its values, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        values: Vec<u64>,
        /// Skip the runs without cache.
        #[arg(long)]
        no_baseline: bool,
        /// Where to write the CSV and SVG.
        #[arg(long, default_value = "target/envelope-bench/sweep")]
        out: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Recommend max_messages / max_age / max_bytes from traffic, cost and limits.
    Plan {
        /// Hosts, each at --rate with its own cache, sharing the budget and the quota; the figures
        /// printed are the fleet's, and the hierarchical keyring's calls are shown beside them.
        #[arg(long, default_value_t = 1)]
        hosts: u32,
        /// With --hosts: the hierarchical keyring's branch-key TTL, seconds.
        #[arg(long, value_parser = parse::seconds, default_value_t = 300.0)]
        ttl: f64,
        /// Messages per second (during bursts with --burst).
        #[arg(long, value_parser = parse::rate, required_unless_present = "examples")]
        rate: Option<f64>,
        /// Average plaintext bytes per message.
        #[arg(long, value_parser = parse::non_negative, default_value_t = 1024.0)]
        size: f64,
        /// Dollars per master-key call (default: AWS KMS, $0.03 per 10,000 requests).
        #[arg(long, value_parser = parse::non_negative, default_value_t = 0.000_003)]
        cost_per_call: f64,
        /// Master-key latency per call, milliseconds.
        #[arg(long, value_parser = parse::millis, default_value_t = 10.0)]
        latency_ms: f64,
        /// Monthly budget for master-key calls, dollars.
        #[arg(long, value_parser = parse::positive)]
        budget: Option<f64>,
        /// Master-key calls per second allowed (quota).
        #[arg(long, value_parser = parse::rate)]
        max_calls_per_second: Option<f64>,
        /// Bytes one data key may encrypt.
        #[arg(long, value_parser = parse::positive)]
        max_bytes: Option<f64>,
        /// Bursty traffic: SECONDS/PERIOD, e.g. 5/60.
        #[arg(long)]
        burst: Option<String>,
        /// Reproduce the worked examples of the ESDK's caching guidance.
        #[arg(long)]
        examples: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The primitives' costs on this machine and backend.
    Floor {
        /// Seconds per primitive.
        #[arg(long, value_parser = parse::seconds, default_value_t = 1.0)]
        seconds: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// N hosts, each with its own cache and keyring, at R messages/s each against simulated KMS
    /// and DynamoDB: calls per second, latency and monthly cost for a caching CMM over KMS, the
    /// hierarchical keyring, and both; write fleet.csv and fleet.svg.
    Fleet {
        /// Hosts (comma-separated for several fleet sizes).
        #[arg(long, value_parser = parse::hosts, value_delimiter = ',', default_value = "10")]
        hosts: Vec<usize>,
        /// Messages per second per host.
        #[arg(long, value_parser = parse::rate, default_value_t = 100.0)]
        rate: f64,
        /// Seconds to run each setup.
        #[arg(long, value_parser = parse::seconds, default_value_t = 10.0)]
        seconds: f64,
        /// Plaintext bytes per message.
        #[arg(long, value_parser = parse::message_size, default_value_t = 1024)]
        size: usize,
        /// Simulated KMS latency, milliseconds.
        #[arg(long, value_parser = parse::millis, default_value_t = 10.0)]
        kms_latency_ms: f64,
        /// Simulated DynamoDB latency, milliseconds.
        #[arg(long, value_parser = parse::millis, default_value_t = 5.0)]
        dynamodb_latency_ms: f64,
        /// KMS calls per second the whole fleet may make; excess calls queue.
        #[arg(long, value_parser = parse::rate)]
        kms_quota: Option<f64>,
        /// Caching CMM max_age, seconds.
        #[arg(long, value_parser = parse::seconds, default_value_t = 300.0)]
        max_age: f64,
        /// Caching CMM max_messages.
        #[arg(long, value_parser = parse::count_u64, default_value_t = 100)]
        max_messages: u64,
        /// Hierarchical keyring branch-key TTL, seconds.
        #[arg(long, value_parser = parse::seconds, default_value_t = 300.0)]
        ttl: f64,
        /// Neither cache fetches ahead of expiry: one KMS call per branch key per TTL (or per data
        /// key's life), and the message that finds it expired waits for the next.
        #[arg(long)]
        no_refresh_ahead: bool,
        /// Setups to run (default: all three).
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "caching-cmm,hierarchy,both"
        )]
        setup: Vec<fleet::Setup>,
        /// Dollars per KMS request (AWS KMS: $0.03 per 10,000).
        #[arg(long, value_parser = parse::non_negative, default_value_t = 0.000_003)]
        kms_cost_per_call: f64,
        /// Dollars per eventually consistent DynamoDB GetItem (on-demand: half a read request
        /// unit, $0.125 per million units).
        #[arg(long, value_parser = parse::non_negative, default_value_t = 0.000_000_062_5)]
        dynamodb_cost_per_read: f64,
        /// Where to write the CSV and SVG.
        #[arg(long, default_value = "target/envelope-bench/fleet")]
        out: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Large messages (one-shot and streaming) against raw AES-GCM and SHA-384, interleaved
    /// round by round so the ratios hold on a noisy machine.
    Large {
        /// Plaintext size in MiB.
        #[arg(long, value_parser = parse::large_mib, default_value_t = 16)]
        mib: usize,
        /// Rounds; each runs every case once, and medians are reported.
        #[arg(long, value_parser = parse::count, default_value_t = 15)]
        rounds: usize,
        /// Algorithm suites (ids in hex or ESDK names), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "0478,0578")]
        suite: Vec<AlgorithmSuite>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Clone)]
struct LoadArgs {
    /// Worker threads using the blocking API.
    #[arg(long, value_parser = parse::workers, default_value_t = 1, conflicts_with = "tasks")]
    threads: usize,
    /// Async tasks on a multi-thread tokio runtime instead of threads.
    #[arg(long, value_parser = parse::workers)]
    tasks: Option<usize>,
    /// Plaintext bytes per message.
    #[arg(long, value_parser = parse::message_size, default_value_t = 1024)]
    size: usize,
    /// Algorithm suite: id in hex or ESDK name (0478 = AES-256 committing, unsigned; 0578 =
    /// signed).
    #[arg(long, default_value = "0478")]
    suite: AlgorithmSuite,
    /// Distinct encryption contexts, used round-robin (each has its own cache entries).
    #[arg(long, value_parser = parse::count, default_value_t = 1)]
    contexts: usize,
    /// max_age, seconds.
    #[arg(long, value_parser = parse::seconds, default_value_t = 300.0)]
    max_age: f64,
    /// max_messages.
    #[arg(long, value_parser = parse::count_u64, default_value_t = 1000)]
    max_messages: u64,
    /// max_bytes.
    #[arg(long, value_parser = parse::count_u64, default_value_t = i64::MAX as u64)]
    max_bytes: u64,
    /// Cache capacity, entries.
    #[arg(long, value_parser = parse::count, default_value_t = 1000)]
    capacity: usize,
    /// Simulated master-key latency, milliseconds.
    #[arg(long, value_parser = parse::millis, default_value_t = 5.0)]
    latency_ms: f64,
    /// Master-key calls per second allowed; calls beyond it queue, as with a KMS quota.
    #[arg(long, value_parser = parse::rate)]
    rate_limit: Option<f64>,
    /// Run for this many seconds ...
    #[arg(long, value_parser = parse::seconds, default_value_t = 3.0, conflicts_with = "messages")]
    duration: f64,
    /// ... or for this many messages.
    #[arg(long, value_parser = parse::count_u64)]
    messages: Option<u64>,
    /// Also decrypt every message (through the same caching CMM).
    #[arg(long)]
    decrypt: bool,
    /// Refresh-ahead: off, auto, or the remaining share of a limit at which to refresh (0 to 1).
    #[arg(long, default_value = "auto")]
    refresh_ahead: RefreshAhead,
    /// A steady rate: messages per second across all workers (default: flat out).
    #[arg(long, value_parser = parse::rate)]
    rate: Option<f64>,
}

impl LoadArgs {
    fn spec(&self) -> Result<LoadSpec, String> {
        let suite = self.suite;
        Ok(LoadSpec {
            concurrency: self.tasks.unwrap_or(self.threads),
            async_tasks: self.tasks.is_some(),
            message_size: self.size,
            suite,
            contexts: self.contexts,
            max_age: Duration::try_from_secs_f64(self.max_age).map_err(|e| e.to_string())?,
            max_messages: self.max_messages,
            max_bytes: self.max_bytes,
            capacity: self.capacity,
            latency: Duration::try_from_secs_f64(self.latency_ms / 1e3)
                .map_err(|e| e.to_string())?,
            rate_limit: self.rate_limit,
            duration: match self.messages {
                Some(_) => None,
                None => {
                    Some(Duration::try_from_secs_f64(self.duration).map_err(|e| e.to_string())?)
                }
            },
            messages: self.messages,
            decrypt: self.decrypt,
            refresh_ahead: self.refresh_ahead,
            rate: self.rate,
        })
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("envelope-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn json(value: &impl serde::Serialize) -> Result<(), String> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).map_err(|e| e.to_string())?
    );
    Ok(())
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Cache {
            load,
            no_baseline,
            json: as_json,
        } => {
            let report = load::run_cache(&load.spec()?, !no_baseline)?;
            if as_json {
                json(&report)
            } else {
                print_cache(&report);
                Ok(())
            }
        }
        Command::Sweep {
            load,
            param,
            values,
            no_baseline,
            out,
            json: as_json,
        } => {
            let rows = sweep::run(&load.spec()?, param, &values, !no_baseline, &out)?;
            if as_json {
                json(&rows)?;
            } else {
                println!(
                    "{:>14} {:>12} {:>10} {:>10} {:>12} {:>14}",
                    "value", "msg/s", "hit rate", "MK calls", "uncached/s", "uncached calls"
                );
                for (value, r) in &rows {
                    let u = r.uncached.clone().unwrap_or_default();
                    println!(
                        "{value:>14} {:>12.0} {:>9.2}% {:>10} {:>12.0} {:>14}",
                        r.cached.msg_per_s,
                        100.0 * r.cached.hit_rate.unwrap_or(0.0),
                        r.cached.master_key_calls,
                        u.msg_per_s,
                        u.master_key_calls
                    );
                }
            }
            wrote_table_and_chart(&out, "sweep");
            Ok(())
        }
        Command::Fleet {
            hosts,
            rate,
            seconds,
            size,
            kms_latency_ms,
            dynamodb_latency_ms,
            kms_quota,
            max_age,
            max_messages,
            ttl,
            no_refresh_ahead,
            setup,
            kms_cost_per_call,
            dynamodb_cost_per_read,
            out,
            json: as_json,
        } => {
            let secs = |name: &str, v: f64| {
                Duration::try_from_secs_f64(v).map_err(|e| format!("--{name}: {e}"))
            };
            if !(seconds > 0.0 && seconds.is_finite()) {
                return Err("--seconds must be positive".into());
            }
            if kms_quota.is_some_and(|q| !(q > 0.0 && q.is_finite())) {
                return Err("--kms-quota must be positive".into());
            }
            let mut results = Vec::new();
            for hosts in hosts {
                let spec = fleet::FleetSpec {
                    hosts,
                    rate,
                    seconds,
                    message_size: size,
                    kms_latency: secs("kms-latency-ms", kms_latency_ms / 1e3)?,
                    dynamodb_latency: secs("dynamodb-latency-ms", dynamodb_latency_ms / 1e3)?,
                    kms_quota,
                    max_age: secs("max-age", max_age)?,
                    max_messages,
                    ttl: secs("ttl", ttl)?,
                    refresh_ahead: !no_refresh_ahead,
                    kms_cost_per_call,
                    dynamodb_cost_per_read,
                };
                results.extend(fleet::run(&spec, &setup)?);
            }
            fleet::write(&results, &out)?;
            if as_json {
                json(&results)?;
            } else {
                println!(
                    "{:>12} {:>6} {:>10} {:>10} {:>12} {:>14} {:>9} {:>9} {:>12}",
                    "setup",
                    "hosts",
                    "messages",
                    "KMS calls",
                    "KMS calls/s",
                    "DynamoDB/s",
                    "p50 µs",
                    "p99 µs",
                    "$/month"
                );
                for r in &results {
                    println!(
                        "{:>12} {:>6} {:>10} {:>10} {:>12.3} {:>14.3} {:>9} {:>9} {:>12.2}",
                        serde_json::to_value(r.setup)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        r.hosts,
                        r.messages,
                        r.kms_calls,
                        r.kms_calls_per_s,
                        r.dynamodb_calls_per_s,
                        r.p50_us,
                        r.p99_us,
                        r.cost_per_month
                    );
                }
            }
            wrote_table_and_chart(&out, "fleet");
            Ok(())
        }
        Command::Plan {
            hosts,
            ttl,
            rate,
            size,
            cost_per_call,
            latency_ms,
            budget,
            max_calls_per_second,
            max_bytes,
            burst,
            examples,
            json: as_json,
        } => {
            if examples {
                let examples = plan::worked_examples();
                if as_json {
                    return json(&examples);
                }
                for (i, ex) in examples.iter().enumerate() {
                    println!("{}. {}", i + 1, ex.scenario);
                    println!("   assuming: {}", ex.assumptions);
                    println!("   guidance: {}", ex.guidance);
                    println!("   plan:     {}", ex.comparison);
                }
                return Ok(());
            }
            let burst = burst
                .map(|b| {
                    let (s, p) = b.split_once('/').ok_or("--burst wants SECONDS/PERIOD")?;
                    let s: f64 = s.parse().map_err(|_| "--burst: bad seconds")?;
                    let p: f64 = p.parse().map_err(|_| "--burst: bad period")?;
                    if !(s > 0.0 && p >= s) {
                        return Err("--burst: need 0 < SECONDS <= PERIOD");
                    }
                    Ok((s, p))
                })
                .transpose()?;
            if hosts == 0 {
                return Err("--hosts must be at least 1".into());
            }
            if !(ttl >= 1.0 && ttl.is_finite()) {
                return Err("--ttl must be at least 1 second".into());
            }
            let fleet = f64::from(hosts);
            // Each host plans for its share of the fleet's budget and quota.
            let input = plan::PlanInput {
                rate: rate.ok_or("--rate is required")?,
                message_size: size,
                cost_per_call,
                latency_ms,
                budget: budget.map(|b| b / fleet),
                max_calls_per_second: max_calls_per_second.map(|q| q / fleet),
                max_bytes,
                burst,
            };
            let mut p = plan::plan(&input);
            for v in [
                &mut p.calls_per_second,
                &mut p.uncached_calls_per_second,
                &mut p.cost_per_month,
                &mut p.uncached_cost_per_month,
                &mut p.refresh_calls_per_second,
            ] {
                *v *= fleet;
            }
            if as_json {
                return json(&p);
            }
            println!("max_messages      {}", p.max_messages);
            println!("max_age           {:.0} s", p.max_age_s);
            if let Some(b) = p.max_bytes {
                println!("max_bytes         {b:.0}");
            }
            println!("messages per key  {:.0}", p.messages_per_key);
            println!(
                "master-key calls  {:.3}/s with cache, {:.1}/s without",
                p.calls_per_second, p.uncached_calls_per_second
            );
            println!(
                "cost              ${:.2}/month with cache, ${:.2}/month without (30-day month)",
                p.cost_per_month, p.uncached_cost_per_month
            );
            println!(
                "added latency     {:.3} ms per message on average without refresh-ahead",
                p.mean_added_latency_ms
            );
            println!(
                "refresh-ahead     auto (the default): no message waits on the master key; {:.1}% of each key's life lost to the refresh lead, {:.3} calls/s",
                100.0 * p.refresh_unused_share,
                p.refresh_calls_per_second
            );
            if hosts > 1 {
                // One branch-key fetch (a KMS Decrypt) per host per TTL, whatever the message rate;
                // refresh-ahead fetches in the last tenth of the TTL (at most its last 10 s).
                let lead = (ttl / 10.0).min(10.0);
                let ahead = fleet / (ttl - lead);
                let exact = fleet / ttl;
                let monthly = |calls: f64| calls * cost_per_call * 30.0 * 86_400.0;
                println!(
                    "fleet             {hosts} hosts (figures above are the fleet's); the hierarchical keyring ({ttl} s TTL, one branch key): {ahead:.3} KMS calls/s (${:.2}/month) with refresh-ahead (a fetch every {:.0} s per host), {exact:.3} calls/s (${:.2}/month) without it (every {ttl} s; the messages a host sends while its fetch is out wait for it)",
                    monthly(ahead),
                    ttl - lead,
                    monthly(exact)
                );
            }
            for w in &p.warnings {
                println!("warning: {w}");
            }
            Ok(())
        }
        Command::Floor {
            seconds,
            json: as_json,
        } => {
            let floors =
                floor::run(Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string())?)?;
            if as_json {
                return json(
                    &serde_json::json!({"backend": envelope::crypto::BACKEND, "floors": floors}),
                );
            }
            println!("backend: {}", envelope::crypto::BACKEND);
            for f in floors {
                let bulk = f
                    .mb_per_s
                    .map(|m| format!(" {m:>10.1} MB/s"))
                    .unwrap_or_default();
                println!(
                    "{:<46} {:>12.0} ns {:>12.0} op/s{bulk}",
                    f.name, f.ns_per_op, f.ops_per_s
                );
            }
            Ok(())
        }
        Command::Large {
            mib,
            rounds,
            suite,
            json: as_json,
        } => {
            let suites = suite;
            let size = mib
                .checked_mul(1 << 20)
                .ok_or("--mib is too large for this machine")?;
            let cases = large::run(&large::LargeSpec {
                size,
                rounds,
                suites,
            })?;
            if as_json {
                return json(&serde_json::json!({
                    "backend": envelope::crypto::BACKEND,
                    "mib": mib,
                    "rounds": rounds,
                    "cases": cases,
                }));
            }
            println!(
                "backend: {}; {mib} MiB, {rounds} rounds, medians; % = the limit's time / this case's time, in the same round",
                envelope::crypto::BACKEND
            );
            for c in cases {
                let share = match (c.of_limit, c.limit) {
                    (Some(r), Some(limit)) => format!("{:>6.1} % of {limit}", 100.0 * r),
                    _ => String::new(),
                };
                println!(
                    "{:<54} {:>10.2} ms {:>10.1} MiB/s  {share}",
                    c.name, c.median_ms, c.mib_per_s
                );
            }
            Ok(())
        }
    }
}

fn print_cache(report: &CacheReport) {
    let s = &report.spec;
    println!(
        "{} {}, {} B messages, suite {}, {} context(s), max_age {:?}, max_messages {}, master key {:?}{}, refresh-ahead {}{} [{}]",
        s.concurrency,
        if s.async_tasks { "tasks" } else { "threads" },
        s.message_size,
        s.suite,
        s.contexts,
        s.max_age,
        s.max_messages,
        s.latency,
        s.rate_limit
            .map(|r| format!(" at most {r}/s"))
            .unwrap_or_default(),
        s.refresh_ahead,
        s.rate
            .map(|r| format!(", steady {r} msg/s"))
            .unwrap_or_else(|| ", flat out".into()),
        report.backend
    );
    let line = |name: &str, r: &LoadResult| {
        println!(
            "{name:<9} {:>9} msgs in {:>6.2} s: {:>10.0} msg/s {:>9.2} MB/s  master-key calls {:>7}  hit rate {:>7}  coalesced {:>6}  waited on the master key {:>7.3}%  took >= 1 ms {:>7.3}%  p50 {:>7} us  p99 {:>7} us  max {:>7} us",
            r.messages,
            r.seconds,
            r.msg_per_s,
            r.mb_per_s,
            r.master_key_calls,
            r.hit_rate
                .map(|h| format!("{:.2}%", 100.0 * h))
                .unwrap_or_else(|| "-".into()),
            r.coalesced_waits,
            100.0 * r.waited_share,
            100.0 * r.slow_share,
            r.p50_us,
            r.p99_us,
            r.max_us
        );
    };
    line("cached", &report.cached);
    if let Some(u) = &report.uncached {
        line("uncached", u);
        if u.msg_per_s > 0.0 {
            println!(
                "caching: {:.1}x the throughput, {:.4} master-key calls per message instead of {:.4}",
                report.cached.msg_per_s / u.msg_per_s,
                report.cached.master_key_calls as f64 / report.cached.messages.max(1) as f64,
                u.master_key_calls as f64 / u.messages.max(1) as f64
            );
        }
    }
}

/// Say where a command wrote its `<name>.csv` and `<name>.svg`.
fn wrote_table_and_chart(out: &std::path::Path, name: &str) {
    eprintln!(
        "wrote {} and {}",
        out.join(format!("{name}.csv")).display(),
        out.join(format!("{name}.svg")).display()
    );
}
