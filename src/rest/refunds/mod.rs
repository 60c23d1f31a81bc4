//! The seed 004 face (`004_*.txt`): refund requests under `/api/v2/refunds`, camelCase
//! under `data`. Each handler runs one GraphQL operation in process. The decisions, which
//! the seed does not have, are `POST /api/v2/refunds/{id}/approve|deny|cancel`.

pub mod handlers;
