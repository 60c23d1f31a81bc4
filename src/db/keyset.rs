//! The position of a row in a sorted list, for keyset paging (see `domain::cursor`).

use chrono::{DateTime, Utc};
use diesel::BoolExpressionMethods;
use diesel::expression::BoxableExpression;
use diesel::pg::Pg;
use diesel::sql_types::Bool;

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

/// A list's sort column as the keyset SQL names it. Every name is a constant of the code,
/// never client text.
#[derive(Debug, Clone, Copy)]
pub struct KeyColumn {
    /// The table's id column (`orders.id`): the tie-breaker.
    pub id: &'static str,
    /// The sort column; `None` sorts by the id alone.
    pub column: Option<&'static str>,
    /// The column is `smallint` (the key is bound as one).
    pub small_int: bool,
    /// The column is nullable and NULL sorts last in both directions.
    pub nulls_last: bool,
}

/// A condition on rows of table `T`.
pub type Condition<T> = Box<dyn BoxableExpression<T, Pg, SqlType = Bool>>;

/// `(column, id) <op> (key, id)` with the key bound as its column's type.
fn compare<T: 'static>(col: &KeyColumn, column: &str, op: &str, key: &SortKey, id: i64) -> Option<Condition<T>> {
    use diesel::dsl::sql;
    use diesel::sql_types::{BigInt, SmallInt, Text, Timestamptz};
    let head = || sql::<Bool>(&format!("({column}, {}) {op} (", col.id));
    macro_rules! compare {
        ($ty:ty, $value:expr) => {
            Box::new(head().bind::<$ty, _>($value).sql(", ").bind::<BigInt, _>(id).sql(")"))
        };
    }
    Some(match key {
        SortKey::Int(v) if col.small_int => compare!(SmallInt, i16::try_from(*v).ok()?),
        SortKey::Int(v) => compare!(BigInt, *v),
        SortKey::Text(t) => compare!(Text, t.clone()),
        SortKey::Time(t) => compare!(Timestamptz, *t),
        SortKey::Null => return None,
    })
}

/// Rows strictly past `bound` (or strictly ahead of it, `bound.before`) in the order
/// `col`/`descending` lists them. The row comparison is what lets PostgreSQL start the
/// index scan at the cursor. `None`: no row can match (a key of the wrong kind).
pub fn condition<T: 'static>(col: &KeyColumn, descending: bool, bound: &Bound) -> Option<Condition<T>> {
    use diesel::dsl::sql;
    use diesel::sql_types::BigInt;
    // Past the cursor in a descending list means smaller; ahead of it means larger.
    let op = if descending != bound.before { "<" } else { ">" };
    let Some(column) = col.column else {
        return Some(Box::new(sql::<Bool>(&format!("{} {op} ", col.id)).bind::<BigInt, _>(bound.id)));
    };
    if !col.nulls_last {
        return compare(col, column, op, &bound.key, bound.id);
    }
    let id = col.id;
    Some(match (&bound.key, bound.before) {
        // Past a dated row: later dated rows, then every undated one.
        (SortKey::Time(_), false) => {
            let undated: Condition<T> = Box::new(sql::<Bool>(&format!("{column} IS NULL")));
            Box::new(compare::<T>(col, column, op, &bound.key, bound.id)?.or(undated))
        }
        // Ahead of a dated row: dated rows only (NULL never compares).
        (SortKey::Time(_), true) => compare(col, column, op, &bound.key, bound.id)?,
        // Past an undated row: undated rows past its id.
        (SortKey::Null, false) => {
            Box::new(sql::<Bool>(&format!("({column} IS NULL AND {id} {op} ")).bind::<BigInt, _>(bound.id).sql(")"))
        }
        // Ahead of an undated row: every dated row, and undated ones ahead of its id.
        (SortKey::Null, true) => {
            Box::new(sql::<Bool>(&format!("({column} IS NOT NULL OR {id} {op} ")).bind::<BigInt, _>(bound.id).sql(")"))
        }
        _ => return None,
    })
}
