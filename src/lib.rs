//! Billing API: orders, payments, refunds and user balances, served over GraphQL with a
//! legacy REST face that runs the same GraphQL operations in process.

pub mod app;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod money;
pub mod pgcluster;
pub mod providers;
pub mod rest;
pub mod seed;
