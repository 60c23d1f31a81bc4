//! The seed 003 face (`003_*.txt`): payments under `/api/payments`, snake_case, amounts in
//! major units. Each handler runs GraphQL operations in process. The path id is the
//! payment's six-character human id. The seed's card fields go to the provider only: no
//! answer of this face carries a card number or a security code.

pub mod handlers;
pub mod shape;
