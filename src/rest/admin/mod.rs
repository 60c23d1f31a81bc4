//! The legacy admin face (seed 000, `000_*.txt`): `/api/v1/admin/orders…` and the signed
//! provider callback. Each handler runs a fixed GraphQL operation in process and reshapes
//! the answer to the seed's JSON.

pub(crate) mod body;
pub(crate) mod mutations;
pub(crate) mod orders;
pub(crate) mod shape;

use super::{ApiError, exec, openapi, params};
