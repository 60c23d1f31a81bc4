//! A small HTTP load generator for the benchmark (bench/run.py): a fixed number of
//! concurrent clients replay a list of requests round-robin for a fixed time after a
//! warm-up, check every response, and print one JSON line of results.
//!
//! A response counts as an error unless it is HTTP 200 and, when it is JSON, has no
//! top-level `errors` (so a GraphQL 200 with errors is a failure).
//!
//!     cargo run --release --example loadgen -- --requests FILE --concurrency 8 --duration 10 --warmup 2 \
//!         [--header 'Authorization: Bearer …'] [--sign-secret SECRET] [--rate REQUESTS_PER_SECOND]
//!
//! FILE holds one JSON object per line: {"method": "GET"|"POST"|"PUT", "url": "...", "body": "..."}.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;

#[derive(Deserialize, Clone)]
struct Planned {
    method: String,
    url: String,
    #[serde(default)]
    body: Option<String>,
}

struct Options {
    requests: Vec<Planned>,
    concurrency: usize,
    duration: Duration,
    warmup: Duration,
    headers: Vec<(String, String)>,
    sign_secret: Option<String>,
    /// Makes each signed delivery's bytes unique across runs (see `delivery`).
    run_nonce: u32,
    /// Requests started per second at most, over all workers (`--rate`); none: as fast as
    /// the workers go.
    rate: Option<f64>,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut requests_file = None;
    let (mut concurrency, mut duration, mut warmup) = (8usize, 10f64, 2f64);
    let mut headers = Vec::new();
    let mut sign_secret = None;
    let mut rate = None;
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--requests" => requests_file = Some(value()?),
            "--concurrency" => concurrency = value()?.parse()?,
            "--duration" => duration = value()?.parse()?,
            "--warmup" => warmup = value()?.parse()?,
            "--header" => {
                let raw = value()?;
                let (name, v) = raw.split_once(':').context("--header wants 'Name: value'")?;
                headers.push((name.trim().to_owned(), v.trim().to_owned()));
            }
            "--sign-secret" => sign_secret = Some(value()?),
            "--rate" => rate = Some(value()?.parse::<f64>()?).filter(|r| *r > 0.0),
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    let file = requests_file.context("--requests FILE is required")?;
    let requests = std::fs::read_to_string(&file)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<Vec<Planned>, _>>()?;
    anyhow::ensure!(!requests.is_empty(), "{file} holds no requests");
    Ok(Options {
        requests,
        concurrency,
        duration: Duration::from_secs_f64(duration),
        warmup: Duration::from_secs_f64(warmup),
        headers,
        sign_secret,
        run_nonce: rand::random(),
        rate,
    })
}

/// The top level of a JSON response, reading only whether `errors` is there: the rest is
/// skipped without building a tree, so checking a large page costs the load generator
/// little of the CPU it shares with the servers it measures.
#[derive(Deserialize)]
struct TopLevel {
    errors: Option<serde::de::IgnoredAny>,
}

fn ok(status: u16, body: &[u8]) -> bool {
    if status != 200 {
        return false;
    }
    // Only a JSON object can carry `errors` (serde would read an array positionally).
    if body.trim_ascii_start().first() != Some(&b'{') {
        return true;
    }
    serde_json::from_slice::<TopLevel>(body).map_or(true, |top| top.errors.is_none())
}

struct WorkerResult {
    latencies_us: Vec<u32>,
    errors: usize,
    samples: Vec<String>,
}

async fn worker(
    client: reqwest::Client,
    options: Arc<Options>,
    next: Arc<AtomicUsize>,
    (start, until): (Instant, Instant),
    record: bool,
) -> WorkerResult {
    let mut result = WorkerResult { latencies_us: Vec::new(), errors: 0, samples: Vec::new() };
    while Instant::now() < until {
        let sequence = next.fetch_add(1, Ordering::Relaxed);
        if let Some(rate) = options.rate {
            // Paced: request n of this phase starts n/rate seconds after it began.
            let due = start + Duration::from_secs_f64(sequence as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
            if Instant::now() >= until {
                break;
            }
        }
        let planned = &options.requests[sequence % options.requests.len()];
        let mut request = match planned.method.as_str() {
            "POST" => client.post(&planned.url),
            "PUT" => client.put(&planned.url),
            _ => client.get(&planned.url),
        };
        for (name, value) in &options.headers {
            request = request.header(name, value);
        }
        let mut body = planned.body.clone().unwrap_or_default();
        if let Some(secret) = &options.sign_secret {
            // Each delivery signed anew, as a provider does: the service accepts a signature
            // once, and the bodies repeat, so each delivery gets unique leading whitespace
            // (the same JSON, other bytes).
            body = format!("{}{body}", delivery(options.run_nonce, sequence));
            let now = chrono::Utc::now().timestamp();
            if let Ok(signature) = billing_api::http::signature::sign(secret, now, body.as_bytes()) {
                request = request.header("X-Billing-Signature", signature);
            }
        }
        if planned.body.is_some() {
            request = request.header("Content-Type", "application/json").body(body);
        }
        let started = Instant::now();
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(bytes) if ok(status, &bytes) => (true, String::new()),
                    Ok(bytes) => {
                        (false, format!("{status} {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)])))
                    }
                    Err(e) => (false, e.to_string()),
                }
            }
            Err(e) => (false, e.to_string()),
        };
        if record {
            result.latencies_us.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
            if !outcome.0 {
                result.errors += 1;
                if result.samples.len() < 3 {
                    result.samples.push(outcome.1);
                }
            }
        }
    }
    result
}

async fn phase(client: &reqwest::Client, options: &Arc<Options>, length: Duration, record: bool) -> Vec<WorkerResult> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let until = start + length;
    let tasks: Vec<_> = (0..options.concurrency)
        .map(|_| tokio::spawn(worker(client.clone(), options.clone(), next.clone(), (start, until), record)))
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        if let Ok(result) = task.await {
            results.push(result);
        }
    }
    results
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Arc::new(parse_args()?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    phase(&client, &options, options.warmup, false).await;
    let started = Instant::now();
    let results = phase(&client, &options, options.duration, true).await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies: Vec<u32> = results.iter().flat_map(|r| r.latencies_us.iter().copied()).collect();
    latencies.sort_unstable();
    let errors: usize = results.iter().map(|r| r.errors).sum();
    let samples: Vec<&String> = results.iter().flat_map(|r| r.samples.iter()).take(3).collect();
    let report = serde_json::json!({
        "requests": latencies.len(),
        "errors": errors,
        "seconds": elapsed,
        "rps": latencies.len() as f64 / elapsed,
        "p50_ms": percentile(&latencies, 0.50),
        "p99_ms": percentile(&latencies, 0.99),
        "error_samples": samples,
    });
    println!("{report}");
    Ok(())
}

/// JSON whitespace spelling out a run's nonce and a delivery's sequence number, two bits a
/// character: unique bytes for an otherwise repeated body.
fn delivery(nonce: u32, sequence: usize) -> String {
    let value = (u64::from(nonce) << 32) | (sequence as u64 & 0xffff_ffff);
    (0..32).map(|i| [' ', '\t', '\n', '\r'][((value >> (2 * i)) & 3) as usize]).collect()
}
