//! The position of a row in a sorted list, for keyset paging (see `domain::cursor`).

use chrono::{DateTime, Utc};

/// A row's position in its sort order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    Int(i64),
    Text(String),
    /// Microsecond precision, as PostgreSQL stores it.
    Time(DateTime<Utc>),
    /// A nullable sort column's NULL (sorted last in both directions).
    Null,
}

/// What kind of key a sort field has, to check a decoded cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Int,
    SmallInt,
    Text,
    Time,
    NullableTime,
}

/// Which rows a keyset page holds: past the cursor, or before it (paging backward).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub key: SortKey,
    pub id: i64,
    /// Rows before the cursor in the list's order (`last`/`before`).
    pub before: bool,
}
