//! The seed 001 face (`001_*.txt`): merchants' payment requests under `/api/v1/order` and
//! `/api/v1/store/orders`. Each handler runs one GraphQL operation in process and answers
//! in the seed's shapes (`shape`) and error body (`error`).

pub mod error;
pub mod handlers;
pub mod shape;

pub use handlers::{create, detail, list, update};
