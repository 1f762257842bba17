//! `plan`: cache limits from a traffic and cost model.
//!
//! Steady state with one encryption context: every `max_messages` messages (or every `max_bytes`
//! bytes, or every `max_age`, whichever comes first) the cache misses once and calls the master
//! key once. So the master-key call rate is `rate / messages_per_key`, and each miss adds the
//! master key's latency to one message. With refresh-ahead (the default) no message waits; a
//! successor takes over only when its predecessor is spent, so message and byte limits lose
//! nothing, and only when age is what retires keys does each key lose the lead with which its
//! successor was fetched.

use serde::Serialize;

/// Seconds in the month the costs are quoted for: 30 days.
pub const SECONDS_PER_MONTH: f64 = 30.0 * 24.0 * 3600.0;

/// The most messages a cached data key may encrypt (the ESDK's limit).
pub const MAX_MESSAGES_LIMIT: u64 = 1 << 32;

/// What the application does and what it may spend.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PlanInput {
    /// Messages encrypted per second (during bursts, if `burst` is set).
    pub rate: f64,
    /// Average plaintext bytes per message.
    pub message_size: f64,
    /// Dollars per master-key call.
    pub cost_per_call: f64,
    /// Master-key latency per call, milliseconds.
    pub latency_ms: f64,
    /// Dollars per month the master-key calls may cost.
    pub budget: Option<f64>,
    /// Master-key calls per second allowed (a quota or service limit).
    pub max_calls_per_second: Option<f64>,
    /// Bytes one data key may encrypt (a security requirement).
    pub max_bytes: Option<f64>,
    /// Traffic comes in bursts: (burst seconds, period seconds).
    pub burst: Option<(f64, f64)>,
}

/// The recommendation and what it costs.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// The input.
    pub input: PlanInput,
    /// Recommended `max_messages`.
    pub max_messages: u64,
    /// Recommended `max_age`, seconds.
    pub max_age_s: f64,
    /// Recommended `max_bytes` (the requirement, when one was given).
    pub max_bytes: Option<f64>,
    /// Messages each data key actually serves (bytes may bind before messages).
    pub messages_per_key: f64,
    /// Master-key calls per second with the cache (averaged over bursts).
    pub calls_per_second: f64,
    /// Dollars per month with the cache.
    pub cost_per_month: f64,
    /// Master-key calls per second without a cache.
    pub uncached_calls_per_second: f64,
    /// Dollars per month without a cache.
    pub uncached_cost_per_month: f64,
    /// Mean master-key latency added per message, milliseconds (without refresh-ahead).
    pub mean_added_latency_ms: f64,
    /// With refresh-ahead `auto` (the default): the share of each data key's life lost because
    /// its age runs from when it was fetched, `latency x 1.25 + min(latency, 1 ms)` before it
    /// takes over. Zero unless `max_age` retires keys before their messages are spent.
    pub refresh_unused_share: f64,
    /// With refresh-ahead `auto`: master-key calls per second (the unused share is made up by
    /// more keys), and no message waits on the master key.
    pub refresh_calls_per_second: f64,
    /// Constraints that cannot all be met, if any.
    pub warnings: Vec<String>,
}

/// Recommend limits: the fewest messages per key that meet the call-rate goals (budget, quota),
/// capped by the byte requirement; then what refresh-ahead (a key retired by age loses the lead
/// its successor was fetched with) does to the call rate, with a warning when that breaks a goal. With a byte requirement and no call-rate goal, each key is
/// reused as far as the byte limit allows (the cheapest plan within the security bound).
pub fn plan(input: &PlanInput) -> Plan {
    let mut warnings = Vec::new();
    let duty = input.burst.map_or(1.0, |(b, p)| (b / p).clamp(0.0, 1.0));
    let average_rate = input.rate * duty;
    // The call rate each goal allows, during traffic.
    let mut allowed = f64::INFINITY;
    if let Some(limit) = input.max_calls_per_second {
        allowed = allowed.min(limit);
    }
    if let Some(budget) = input.budget {
        // The budget is monthly: it allows calls at this average rate, which during bursts may
        // run 1/duty higher.
        let average = budget / (input.cost_per_call * SECONDS_PER_MONTH);
        allowed = allowed.min(average / duty);
    }
    // Refresh-ahead (the default) fetches each key's successor `lead` before the current key
    // runs out; the successor waits beside it, and its age runs from the fetch.
    let latency_s = input.latency_ms / 1e3;
    let lead_s = 1.25 * latency_s + latency_s.min(0.001);
    let needed = if allowed.is_finite() && allowed > 0.0 {
        (input.rate / allowed).ceil().max(1.0)
    } else if allowed == 0.0 {
        warnings.push("the goals allow no master-key calls at all".into());
        MAX_MESSAGES_LIMIT as f64
    } else {
        1.0
    };
    let by_bytes = input
        .max_bytes
        .map(|b| (b / input.message_size.max(1.0)).floor().max(1.0));
    // With a byte limit and no call-rate goal, the byte limit is the security bound and cost is
    // the objective: reuse each key as far as the byte limit allows.
    let needed = match by_bytes {
        Some(b) if !allowed.is_finite() => b,
        _ => needed,
    };
    // `needed` is a whole number of messages, at least 1, at most 2^32 once clamped: exact as u64.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let max_messages = (needed.min(MAX_MESSAGES_LIMIT as f64) as u64).clamp(1, MAX_MESSAGES_LIMIT);
    let messages_per_key = by_bytes.map_or(max_messages as f64, |b| b.min(max_messages as f64));
    if let Some(b) = by_bytes.filter(|&b| b < needed) {
        warnings.push(format!(
            "the byte limit lets a data key serve only {b} messages; the call-rate goals need {needed}"
        ));
    }
    // Age: long enough that age rarely binds before the message limit; with bursts, long enough
    // to serve a whole burst with margin but short enough to expire between bursts.
    let max_age_s = match input.burst {
        Some((burst, period)) => (4.0 * burst).min(period - burst).max(1.0),
        None => (2.0 * messages_per_key / input.rate.max(f64::MIN_POSITIVE))
            .ceil()
            .max(1.0),
    };
    let calls_per_second = average_rate / messages_per_key;
    let uncached_calls_per_second = average_rate;
    let key_life_s = messages_per_key / input.rate.max(f64::MIN_POSITIVE);
    let refresh_unused_share = if max_age_s < key_life_s {
        (lead_s / max_age_s).clamp(0.0, 0.5)
    } else {
        0.0
    };
    let refresh_calls_per_second = calls_per_second / (1.0 - refresh_unused_share);
    // During traffic, against the goal (which is per second of traffic too).
    let during = input.rate / messages_per_key;
    let during_refresh = during / (1.0 - refresh_unused_share);
    if allowed.is_finite()
        && during <= allowed * (1.0 + 1e-9)
        && during_refresh > allowed * (1.0 + 1e-9)
    {
        warnings.push(format!(
            "with refresh-ahead auto (the default) the call rate rises to {during_refresh:.3}/s, above the goal's {allowed:.3}/s: use max_messages {} or refresh-ahead off",
            (needed / (1.0 - refresh_unused_share)).ceil().min(MAX_MESSAGES_LIMIT as f64)
        ));
    }
    Plan {
        input: input.clone(),
        max_messages,
        max_age_s,
        max_bytes: input.max_bytes,
        messages_per_key,
        calls_per_second,
        cost_per_month: calls_per_second * input.cost_per_call * SECONDS_PER_MONTH,
        uncached_calls_per_second,
        uncached_cost_per_month: uncached_calls_per_second
            * input.cost_per_call
            * SECONDS_PER_MONTH,
        mean_added_latency_ms: input.latency_ms / messages_per_key,
        refresh_unused_share,
        refresh_calls_per_second,
        warnings,
    }
}

/// One of the ESDK guidance's worked examples, with the figures it arrives at.
#[derive(Clone, Debug, Serialize)]
pub struct WorkedExample {
    /// What the guidance describes.
    pub scenario: &'static str,
    /// The inputs we model it with, including assumptions the scenario leaves open.
    pub assumptions: &'static str,
    /// What the guidance recommends.
    pub guidance: &'static str,
    /// Our plan.
    pub plan: Plan,
    /// How the two compare.
    pub comparison: String,
}

/// The four worked examples of the ESDK's data-key-caching guidance (AWS Security Blog, "How to
/// decide if data key caching is right for your application").
pub fn worked_examples() -> Vec<WorkedExample> {
    let base = PlanInput {
        message_size: 1024.0,
        latency_ms: 10.0,
        ..PlanInput::default()
    };
    let mut out = Vec::new();

    let p = plan(&PlanInput {
        rate: 1000.0,
        cost_per_call: 0.000_003,
        max_calls_per_second: Some(100.0),
        ..base.clone()
    });
    out.push(WorkedExample {
        scenario: "a 1,000 TPS application whose master key allows 100 TPS",
        assumptions: "1 KiB messages, KMS price $0.03 per 10,000 calls",
        guidance: "max messages 10",
        comparison: format!(
            "same: max_messages {} -> {:.0} calls/s",
            p.max_messages, p.calls_per_second
        ),
        plan: p,
    });

    let p = plan(&PlanInput {
        rate: 1000.0,
        cost_per_call: 0.01,
        budget: Some(100_000.0),
        ..base.clone()
    });
    out.push(WorkedExample {
        scenario: "a master key costing $0.01 per call, 1,000 TPS, within $100,000 a month",
        assumptions: "30-day month; 1 KiB messages",
        guidance: "reuse each data key for a few hundred messages",
        comparison: format!(
            "max_messages {} -> {:.2} calls/s, ${:.0}/month (uncached ${:.0}); a 31-day month needs {}",
            p.max_messages,
            p.calls_per_second,
            p.cost_per_month,
            p.uncached_cost_per_month,
            (1000.0f64 / (100_000.0 / (0.01 * 31.0 * 86_400.0))).ceil()
        ),
        plan: p,
    });

    let p = plan(&PlanInput {
        rate: 100.0,
        cost_per_call: 0.000_003,
        max_calls_per_second: Some(40.0),
        burst: Some((5.0, 60.0)),
        ..base.clone()
    });
    out.push(WorkedExample {
        scenario: "bursts of 100 TPS lasting 5 s once a minute",
        assumptions: "a master-key quota of 40 calls/s during the burst (the guidance's limit is not restated)",
        guidance: "max messages 3, max age 20 s",
        comparison: format!(
            "same: max_messages {}, max_age {:.0} s (4 x the burst, below the 55 s gap) -> {:.2} calls/s averaged",
            p.max_messages, p.max_age_s, p.calls_per_second
        ),
        plan: p,
    });

    let p = plan(&PlanInput {
        rate: 100.0,
        message_size: 1_000_000.0,
        cost_per_call: 1.0,
        max_bytes: Some(10e9),
        ..base
    });
    out.push(WorkedExample {
        scenario: "a master key costing $1.00 per call, at most 10 GB under one data key",
        assumptions: "100 messages/s of 1 MB (100 MB/s)",
        guidance: "max bytes 10 GB; the byte limit, not cost, sets the reuse",
        comparison: format!(
            "max_bytes 10 GB -> {:.0} messages per key, {:.3} calls/s, ${:.0}/month (uncached ${:.0})",
            p.messages_per_key, p.calls_per_second, p.cost_per_month, p.uncached_cost_per_month
        ),
        plan: p,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_the_worked_examples() {
        let examples = worked_examples();
        assert_eq!(examples[0].plan.max_messages, 10);
        assert!((examples[0].plan.calls_per_second - 100.0).abs() < 1e-9);
        // $100,000 / ($0.01 x 2,592,000 s) = 3.858 calls/s -> 259.2 -> 260 messages per key.
        assert_eq!(examples[1].plan.max_messages, 260);
        assert!(examples[1].plan.cost_per_month <= 100_000.0);
        assert_eq!(examples[2].plan.max_messages, 3);
        assert_eq!(examples[2].plan.max_age_s, 20.0);
        assert_eq!(examples[3].plan.messages_per_key, 10_000.0);
        assert!((examples[3].plan.calls_per_second - 0.01).abs() < 1e-12);
    }

    #[test]
    fn byte_limits_bind_and_warn() {
        let p = plan(&PlanInput {
            rate: 1000.0,
            message_size: 1e6,
            cost_per_call: 0.01,
            max_calls_per_second: Some(1.0),
            max_bytes: Some(100e6),
            ..PlanInput::default()
        });
        assert_eq!(p.max_messages, 1000);
        assert_eq!(p.messages_per_key, 100.0);
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn refresh_ahead_costs_no_calls_when_messages_retire_keys() {
        let p = plan(&PlanInput {
            rate: 1000.0,
            message_size: 1024.0,
            latency_ms: 20.0,
            cost_per_call: 0.03 / 10_000.0,
            budget: Some(100.0),
            ..PlanInput::default()
        });
        assert!(p.max_age_s * 1000.0 >= p.messages_per_key, "{p:?}");
        assert_eq!(p.refresh_unused_share, 0.0);
        assert_eq!(p.refresh_calls_per_second, p.calls_per_second);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }
}
