//! `fleet`: N hosts, each with its own cache and keyring, encrypting at R messages/s each against
//! simulated AWS KMS and DynamoDB (latency, a fleet-wide KMS quota); the calls each service sees,
//! message latency and monthly cost, for a caching CMM over KMS, the hierarchical keyring, and a
//! caching CMM over the hierarchical keyring.

use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envelope::cache::RefreshAhead;
use envelope::hierarchy::{
    BranchKey, BranchKeyCache, BranchKeyStore, BranchKeyVersion, HierarchicalKeyring, KeyStoreError,
};
use envelope::{AlgorithmSuite, CachingCmm, Client, LocalCache, MaterialsManager, SecretBytes};
use plotters::prelude::*;
use serde::Serialize;

use crate::load::SimulatedMasterKey;

/// Seconds in a 30-day month, for costs.
const MONTH_SECONDS: f64 = 30.0 * 86_400.0;

/// How the hosts get their data keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Setup {
    /// A caching CMM over a KMS keyring on every host.
    CachingCmm,
    /// The hierarchical keyring on every host (one shared branch key).
    Hierarchy,
    /// A caching CMM over the hierarchical keyring on every host.
    Both,
}

impl Setup {
    /// All three, in report order.
    pub const ALL: [Self; 3] = [Self::CachingCmm, Self::Hierarchy, Self::Both];

    fn name(self) -> &'static str {
        match self {
            Self::CachingCmm => "caching-cmm",
            Self::Hierarchy => "hierarchy",
            Self::Both => "both",
        }
    }
}

/// What to simulate.
#[derive(Clone, Debug, Serialize)]
pub struct FleetSpec {
    /// Hosts, each with its own cache and keyring.
    pub hosts: usize,
    /// Messages per second per host (a steady schedule).
    pub rate: f64,
    /// How long to run.
    pub seconds: f64,
    /// Plaintext bytes per message.
    pub message_size: usize,
    /// Simulated KMS latency per call.
    pub kms_latency: Duration,
    /// Simulated DynamoDB latency per call.
    pub dynamodb_latency: Duration,
    /// KMS calls per second the whole fleet may make (the account's quota); excess calls queue.
    pub kms_quota: Option<f64>,
    /// Caching CMM: max age of a data key.
    pub max_age: Duration,
    /// Caching CMM: messages per data key.
    pub max_messages: u64,
    /// Hierarchical keyring: branch-key cache TTL.
    pub ttl: Duration,
    /// Both caches fetch the next key ahead of expiry (their default); `false`: exactly one
    /// fetch per TTL or data-key lifetime, with the message at expiry waiting for it.
    pub refresh_ahead: bool,
    /// Dollars per KMS request.
    pub kms_cost_per_call: f64,
    /// Dollars per DynamoDB eventually consistent `GetItem` (half a read request unit).
    pub dynamodb_cost_per_read: f64,
}

/// What one setup measured.
#[derive(Clone, Debug, Serialize)]
pub struct FleetResult {
    /// The setup.
    pub setup: Setup,
    /// Hosts.
    pub hosts: usize,
    /// Messages encrypted by the fleet.
    pub messages: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// KMS calls the fleet made.
    pub kms_calls: u64,
    /// KMS calls per second.
    pub kms_calls_per_s: f64,
    /// DynamoDB calls per second.
    pub dynamodb_calls_per_s: f64,
    /// KMS calls per host per TTL (hierarchical setups) or per max age (caching CMM).
    pub kms_calls_per_host_per_period: f64,
    /// Message latency from when it was due, microseconds: median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// KMS and DynamoDB cost per 30-day month at these rates, dollars.
    pub cost_per_month: f64,
}

/// A branch-key store that answers after a simulated DynamoDB read and KMS decrypt.
struct SimulatedKeyStore {
    key: BranchKey,
    dynamodb: Arc<SimulatedMasterKey>,
    kms: Arc<SimulatedMasterKey>,
}

impl std::fmt::Debug for SimulatedKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimulatedKeyStore")
    }
}

#[envelope::async_trait]
impl BranchKeyStore for SimulatedKeyStore {
    fn logical_name(&self) -> &str {
        "simulated"
    }

    async fn active_branch_key(&self, _id: &str) -> Result<BranchKey, KeyStoreError> {
        self.dynamodb.call().await;
        self.kms.call().await;
        Ok(self.key.clone())
    }

    async fn branch_key_version(
        &self,
        id: &str,
        _version: BranchKeyVersion,
    ) -> Result<BranchKey, KeyStoreError> {
        self.active_branch_key(id).await
    }
}

/// Run every setup in `setups` for the spec; one result each.
pub fn run(spec: &FleetSpec, setups: &[Setup]) -> Result<Vec<FleetResult>, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    setups
        .iter()
        .map(|setup| runtime.block_on(run_one(spec, *setup)))
        .collect()
}

async fn run_one(spec: &FleetSpec, setup: Setup) -> Result<FleetResult, String> {
    let fail = |e: &dyn std::fmt::Display| e.to_string();
    if spec.hosts == 0 || !(spec.rate > 0.0 && spec.rate.is_finite()) {
        return Err("fleet needs at least one host and a positive, finite rate".into());
    }
    let kms =
        Arc::new(SimulatedMasterKey::new(spec.kms_latency, spec.kms_quota).map_err(|e| fail(&e))?);
    let dynamodb =
        Arc::new(SimulatedMasterKey::new(spec.dynamodb_latency, None).map_err(|e| fail(&e))?);
    let branch_key = BranchKey::new(
        "fleet-branch-key",
        BranchKeyVersion::random().map_err(|e| fail(&e))?,
        SecretBytes::random(32).map_err(|e| fail(&e))?,
    )
    .map_err(|e| fail(&e))?;
    let store: Arc<dyn BranchKeyStore> = Arc::new(SimulatedKeyStore {
        key: branch_key,
        dynamodb: dynamodb.clone(),
        kms: kms.clone(),
    });
    let mut cmms: Vec<Arc<dyn MaterialsManager>> = Vec::with_capacity(spec.hosts);
    for _ in 0..spec.hosts {
        let hierarchical = || {
            let cache = BranchKeyCache::default();
            HierarchicalKeyring::builder_shared(store.clone())
                .branch_key_id("fleet-branch-key")
                .ttl(spec.ttl)
                .cache(if spec.refresh_ahead {
                    cache
                } else {
                    cache.without_refresh_ahead()
                })
                .build()
                .map_err(|e| fail(&e))
        };
        let caching =
            |inner: Arc<dyn MaterialsManager>| -> Result<Arc<dyn MaterialsManager>, String> {
                let cache = LocalCache::new(NonZeroUsize::MIN.saturating_add(63));
                CachingCmm::builder_from_arcs(inner, Arc::new(cache))
                    .max_age(spec.max_age)
                    .max_messages(spec.max_messages)
                    .refresh_ahead(if spec.refresh_ahead {
                        RefreshAhead::default()
                    } else {
                        RefreshAhead::Off
                    })
                    .build()
                    .map(|c| Arc::new(c) as Arc<dyn MaterialsManager>)
                    .map_err(|e| fail(&e))
            };
        cmms.push(match setup {
            Setup::CachingCmm => caching(kms.clone())?,
            Setup::Hierarchy => Arc::new(hierarchical()?),
            Setup::Both => caching(Arc::new(hierarchical()?))?,
        });
    }

    let run_for = Duration::try_from_secs_f64(spec.seconds).map_err(|e| format!("seconds: {e}"))?;
    let interval = Duration::try_from_secs_f64(1.0 / spec.rate)
        .ok()
        .filter(|i| !i.is_zero())
        .ok_or("the rate must give a message interval between 1 ns and the largest duration")?;
    let start = Instant::now();
    let end = start + run_for;
    let data = Arc::new(vec![0x5a_u8; spec.message_size]);
    let mut tasks = Vec::with_capacity(spec.hosts);
    for (host, cmm) in cmms.into_iter().enumerate() {
        let data = data.clone();
        // Hosts start spread over one interval, as a real fleet's would.
        let offset = interval.mul_f64(host as f64 / spec.hosts as f64);
        tasks.push(tokio::spawn(async move {
            let client = Client::new();
            let mut latencies = Vec::new();
            let mut due = start + offset;
            while due < end {
                let now = Instant::now();
                if due > now {
                    futures_timer::Delay::new(due - now).await;
                }
                client
                    .encrypt(cmm.as_ref(), &data)
                    .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
                    .await
                    .map_err(|e| e.to_string())?;
                let micros = due.elapsed().as_micros();
                latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
                due += interval;
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.map_err(|e| fail(&e))??);
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let percentile = |per_mille: usize| {
        let i = latencies.len().saturating_sub(1) * per_mille / 1000;
        latencies.get(i).map_or(0, |v| u64::from(*v))
    };
    let kms_calls = kms.calls();
    let kms_per_s = kms_calls as f64 / seconds;
    let dynamodb_per_s = dynamodb.calls() as f64 / seconds;
    let period = match setup {
        Setup::CachingCmm => spec.max_age,
        Setup::Hierarchy | Setup::Both => spec.ttl,
    };
    let periods = (seconds / period.as_secs_f64()).max(1.0);
    Ok(FleetResult {
        setup,
        hosts: spec.hosts,
        messages: latencies.len() as u64,
        seconds,
        kms_calls,
        kms_calls_per_s: kms_per_s,
        dynamodb_calls_per_s: dynamodb_per_s,
        kms_calls_per_host_per_period: kms_calls as f64 / spec.hosts as f64 / periods,
        p50_us: percentile(500),
        p99_us: percentile(990),
        cost_per_month: (kms_per_s * spec.kms_cost_per_call
            + dynamodb_per_s * spec.dynamodb_cost_per_read)
            * MONTH_SECONDS,
    })
}

/// The results as CSV.
pub fn csv(results: &[FleetResult]) -> String {
    let mut out = String::from(
        "setup,hosts,messages,seconds,kms_calls,kms_calls_per_s,dynamodb_calls_per_s,kms_calls_per_host_per_period,p50_us,p99_us,cost_per_month\n",
    );
    for r in results {
        let _ = writeln!(
            out,
            "{},{},{},{:.3},{},{:.4},{:.4},{:.3},{},{},{:.2}",
            r.setup.name(),
            r.hosts,
            r.messages,
            r.seconds,
            r.kms_calls,
            r.kms_calls_per_s,
            r.dynamodb_calls_per_s,
            r.kms_calls_per_host_per_period,
            r.p50_us,
            r.p99_us,
            r.cost_per_month
        );
    }
    out
}

/// Write `fleet.csv` and `fleet.svg` (KMS calls per second per setup, log scale) into `out`.
pub fn write(results: &[FleetResult], out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    std::fs::write(out.join("fleet.csv"), csv(results)).map_err(|e| e.to_string())?;
    plot(results, &out.join("fleet.svg")).map_err(|e| format!("plot: {e}"))
}

fn plot(results: &[FleetResult], path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (960, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = results
        .iter()
        .map(|r| r.kms_calls_per_s)
        .fold(1.0_f64, f64::max);
    let min = results
        .iter()
        .map(|r| r.kms_calls_per_s)
        .filter(|v| *v > 0.0)
        .fold(max, f64::min);
    let mut chart = ChartBuilder::on(&root)
        .caption("KMS calls per second, whole fleet", ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            0.0..results.len() as f64,
            ((min / 2.0).max(1e-3)..max * 2.0).log_scale(),
        )?;
    let labels: Vec<String> = results
        .iter()
        .map(|r| format!("{} ({} hosts)", r.setup.name(), r.hosts))
        .collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(results.len() + 1)
        .x_label_formatter(&|x| {
            labels
                .iter()
                .enumerate()
                .find(|(i, _)| *i as f64 == *x)
                .map(|(_, label)| label.clone())
                .unwrap_or_default()
        })
        .y_desc("calls/s")
        .draw()?;
    chart.draw_series(results.iter().enumerate().map(|(i, r)| {
        let x = i as f64;
        Rectangle::new(
            [
                (x + 0.15, (min / 2.0).max(1e-3)),
                (x + 0.85, r.kms_calls_per_s.max(1e-3)),
            ],
            BLUE.mix(0.6).filled(),
        )
    }))?;
    root.present()?;
    Ok(())
}
