//! Prometheus metrics of one app: requests by route/operation/status, latencies, the pool,
//! database statements and errors, payments and refunds by outcome.

use std::time::Duration;

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::db::{DbPool, StatementCounter};

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    payments: IntCounterVec,
    refunds: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> anyhow::Result<IntCounterVec> {
    let counter = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(counter.clone()))?;
    Ok(counter)
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new();
        let requests = counter(
            &registry,
            "http_requests_total",
            "HTTP requests by route, GraphQL operation and status.",
            &["route", "operation", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route and operation.")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["route", "operation"],
        )?;
        registry.register(Box::new(latency.clone()))?;
        let payments = counter(&registry, "payments_total", "Payment changes by outcome.", &["outcome"])?;
        let refunds = counter(&registry, "refunds_total", "Refund requests by outcome.", &["outcome"])?;
        Ok(Self { registry, requests, latency, payments, refunds })
    }

    pub fn observe_request(&self, route: &str, operation: &str, status: u16, latency: Duration) {
        self.requests.with_label_values(&[route, operation, &status.to_string()]).inc();
        self.latency.with_label_values(&[route, operation]).observe(latency.as_secs_f64());
    }

    pub fn payment(&self, outcome: &str) {
        self.payments.with_label_values(&[outcome]).inc();
    }

    pub fn refund(&self, outcome: &str) {
        self.refunds.with_label_values(&[outcome]).inc();
    }

    /// The exposition text, with the pool and statement figures read now.
    pub fn render(&self, pool: &DbPool, statements: &StatementCounter) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "encoding metrics");
        }
        let mut text = String::from_utf8_lossy(&buffer).into_owned();
        let status = pool.status();
        let in_use = status.size.saturating_sub(status.available);
        text.push_str(&format!(
            "# HELP db_pool_connections Database pool connections by state.\n\
             # TYPE db_pool_connections gauge\n\
             db_pool_connections{{state=\"open\"}} {}\n\
             db_pool_connections{{state=\"idle\"}} {}\n\
             db_pool_connections{{state=\"in_use\"}} {in_use}\n\
             db_pool_connections{{state=\"max\"}} {}\n\
             # HELP db_pool_waiting Requests waiting for a pooled connection.\n\
             # TYPE db_pool_waiting gauge\n\
             db_pool_waiting {}\n\
             # HELP db_statements_total SQL statements sent.\n\
             # TYPE db_statements_total counter\n\
             db_statements_total {}\n\
             # HELP db_errors_total SQL statements that failed.\n\
             # TYPE db_errors_total counter\n\
             db_errors_total {}\n",
            status.size,
            status.available,
            status.max_size,
            status.waiting,
            statements.get(),
            statements.errors(),
        ));
        text
    }
}
