//! Integration tests: requests through the router in process against a real PostgreSQL,
//! each test in its own database cloned from a migrated template.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on what it did not expect")]

mod access;
mod adversarial;
mod bench;
mod binary;
mod browser;
mod callbacks;
mod capture;
mod card_scan;
mod common;
mod connections;
mod contract;
mod crashes;
mod currencies;
mod cursors;
mod dataloader;
mod fake_stripe;
mod faults;
mod graphql_http;
mod graphql_reads;
mod graphql_writes;
mod hostile;
mod idempotency;
mod limits;
mod merchants;
mod migrations;
mod mutations;
mod observability;
mod openapi;
mod pay_orders;
mod payment_details;
mod payment_lists;
mod payments_rest;
mod property;
mod provider_calls;
mod races;
mod refund_requests;
mod refunds_rest;
mod resilience;
mod rest_reads;
mod schema;
mod seed;
mod store_rest;
mod stripe;
mod subscriptions;
mod webhooks;
