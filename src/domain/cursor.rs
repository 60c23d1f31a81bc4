//! Keyset paging with opaque cursors (Relay connections), for every list that pages by
//! cursor.
//!
//! A cursor names one row of one list: the list's sort field and direction, a fingerprint of
//! its filter, and the row's sort key and id. The next page is the rows strictly past that
//! (key, id) in the list's order, found by the sort index whatever the depth, so a walk
//! neither skips nor repeats a row while rows are inserted or changed elsewhere in the list.
//! A cursor used with another filter, sort or direction is refused (`BAD_USER_INPUT`).
//!
//! The wire form is base64url (no padding) of a small JSON object. It is opaque to clients,
//! and not secret: it only says where a list the caller may read was left off, and the
//! filter still decides what is visible.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::paging::{DEFAULT_PER_PAGE, MAX_PER_PAGE, PageRequest};
pub use crate::db::keyset::{Bound, KeyKind, SortKey};
use crate::error::{AppError, AppResult};

/// The longest cursor read: a text key of an order number fits many times over.
const MAX_CURSOR_LEN: usize = 512;

/// A validated keyset request (`first`/`after` or `last`/`before`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysetRequest {
    pub size: i64,
    /// `last`/`before`: the page ends at the cursor (or at the list's end).
    pub backward: bool,
    /// The cursor as sent, decoded once the list knows its shape.
    pub cursor: Option<String>,
    pub count_total: bool,
}

/// How a list is paged: by page number (the legacy faces) or by cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window {
    Pages(PageRequest),
    Keyset(KeysetRequest),
}

/// The GraphQL paging arguments of a list field.
#[derive(Debug, Clone, Default)]
pub struct PagingArgs {
    pub page: Option<i32>,
    pub per_page: Option<i32>,
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

impl Window {
    /// Validates the two ways to page: `page`/`perPage`, or `first`/`after` and
    /// `last`/`before`. Mixing them, or `first` with `last`, is a `BAD_USER_INPUT`.
    pub fn from_args(args: PagingArgs) -> AppResult<Self> {
        let by_cursor = args.first.is_some() || args.after.is_some() || args.last.is_some() || args.before.is_some();
        if !by_cursor {
            return Ok(Window::Pages(PageRequest::from_args(args.page, args.per_page)?));
        }
        if args.page.is_some() || args.per_page.is_some() {
            return Err(AppError::bad_input(
                "page/perPage and first/after/last/before are two ways to page: use one of them",
            ));
        }
        let backward = args.last.is_some() || args.before.is_some();
        if backward && (args.first.is_some() || args.after.is_some()) {
            return Err(AppError::bad_input(
                "first/after page forward and last/before page backward: use one pair, not both",
            ));
        }
        let (size, name, cursor) =
            if backward { (args.last, "last", args.before) } else { (args.first, "first", args.after) };
        let size = size.map_or(DEFAULT_PER_PAGE, i64::from);
        if !(1..=MAX_PER_PAGE).contains(&size) {
            return Err(AppError::bad_input(format!("{name} must be between 1 and {MAX_PER_PAGE} (got {size})")));
        }
        Ok(Window::Keyset(KeysetRequest { size, backward, cursor, count_total: true }))
    }

    /// The same window, without counting the matching rows.
    pub fn without_total(self) -> Self {
        match self {
            Window::Pages(p) => Window::Pages(p.without_total()),
            Window::Keyset(k) => Window::Keyset(KeysetRequest { count_total: false, ..k }),
        }
    }

    pub fn count_total(&self) -> bool {
        match self {
            Window::Pages(p) => p.count_total,
            Window::Keyset(k) => k.count_total,
        }
    }

    /// Rows to read: the page and one more, which says whether there is a further page.
    pub fn size(&self) -> i64 {
        match self {
            Window::Pages(p) => p.per_page,
            Window::Keyset(k) => k.size,
        }
    }
}

/// How one list query reads its window: the page request, the offset (page numbers), the
/// cursor's bound and whether it reads backward (cursors).
#[derive(Debug, Clone)]
pub struct Plan {
    pub request: PageRequest,
    pub offset: i64,
    pub bound: Option<Bound>,
    pub reversed: bool,
}

impl Window {
    /// Decodes the cursor against the list's shape and says how to read the page (one row
    /// more than the page, which says whether there is a further page).
    pub fn plan(&self, shape: &ListShape) -> AppResult<Plan> {
        Ok(match self {
            Window::Pages(p) => Plan { request: *p, offset: p.offset(), bound: None, reversed: false },
            Window::Keyset(k) => {
                let bound = match &k.cursor {
                    Some(text) => {
                        let (key, id) = shape.decode(text, if k.backward { "before" } else { "after" })?;
                        Some(Bound { key, id, before: k.backward })
                    }
                    None => None,
                };
                let request = PageRequest { page: 1, per_page: k.size, count_total: k.count_total };
                Plan { request, offset: 0, bound, reversed: k.backward }
            }
        })
    }

    /// The page from the rows read by [`Self::plan`] (in reading order, one extra at most):
    /// trimmed, put back in list order, with both "more" flags and every row's cursor.
    pub fn finish<T>(
        &self,
        mut nodes: Vec<T>,
        plan: &Plan,
        total_count: super::paging::Total,
        shape: &ListShape,
        key: impl Fn(&T) -> (SortKey, i64),
    ) -> super::paging::Page<T> {
        let more = nodes.len() as i64 > plan.request.per_page;
        nodes.truncate(usize::try_from(plan.request.per_page).unwrap_or(usize::MAX));
        let (has_next_page, has_previous_page) = match self {
            Window::Pages(p) => (more, p.page > 1),
            Window::Keyset(k) if k.backward => {
                nodes.reverse();
                (k.cursor.is_some(), more)
            }
            Window::Keyset(k) => (more, k.cursor.is_some()),
        };
        let cursors = nodes
            .iter()
            .map(|n| {
                let (sort_key, id) = key(n);
                shape.encode(&sort_key, id)
            })
            .collect();
        super::paging::Page {
            nodes,
            request: plan.request,
            total_count,
            has_next_page,
            has_previous_page,
            cursors,
            by_cursor: matches!(self, Window::Keyset(_)),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    /// Format version.
    v: u8,
    /// Sort field and direction.
    s: String,
    d: bool,
    /// Filter fingerprint.
    f: String,
    /// Sort key: a number, a string, microseconds since the epoch, or null.
    k: serde_json::Value,
    i: i64,
}

/// The shape of one list: its sort and a fingerprint of its filter. Cursors are made and
/// read through it.
#[derive(Debug, Clone)]
pub struct ListShape {
    sort: &'static str,
    descending: bool,
    kind: KeyKind,
    fingerprint: String,
}

impl ListShape {
    /// `filter` is a canonical text of the list's filter after the caller's confinement
    /// (anything that changes which rows match must change it).
    pub fn new(sort: &'static str, descending: bool, kind: KeyKind, filter: &str) -> Self {
        let digest = Sha256::digest(filter.as_bytes());
        let fingerprint = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Self { sort, descending, kind, fingerprint }
    }

    pub fn encode(&self, key: &SortKey, id: i64) -> String {
        let k = match key {
            SortKey::Int(v) => serde_json::Value::from(*v),
            SortKey::Text(t) => serde_json::Value::from(t.as_str()),
            SortKey::Time(t) => serde_json::Value::from(t.timestamp_micros()),
            SortKey::Null => serde_json::Value::Null,
        };
        let wire = Wire { v: 1, s: self.sort.to_owned(), d: self.descending, f: self.fingerprint.clone(), k, i: id };
        // Serialising a struct of strings and numbers cannot fail.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
    }

    /// Reads a cursor sent as argument `arg`; one of another list shape is refused.
    pub fn decode(&self, text: &str, arg: &str) -> AppResult<(SortKey, i64)> {
        let bad = |why: &str| AppError::bad_input(format!("{arg} is not a cursor of this list: {why}"));
        if text.len() > MAX_CURSOR_LEN {
            return Err(bad("too long"));
        }
        let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).map_err(|_| bad("not a cursor"))?;
        let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| bad("not a cursor"))?;
        if wire.v != 1 {
            return Err(bad("not a cursor"));
        }
        if wire.s != self.sort || wire.d != self.descending {
            return Err(bad("it was made for another sort or direction; start again without a cursor"));
        }
        if wire.f != self.fingerprint {
            return Err(bad("it was made for another filter; start again without a cursor"));
        }
        let key = match (self.kind, &wire.k) {
            (KeyKind::Int, serde_json::Value::Number(n)) => n.as_i64().map(SortKey::Int),
            (KeyKind::SmallInt, serde_json::Value::Number(n)) => {
                n.as_i64().filter(|v| i16::try_from(*v).is_ok()).map(SortKey::Int)
            }
            (KeyKind::Text, serde_json::Value::String(s)) if !s.contains('\0') => Some(SortKey::Text(s.clone())),
            (KeyKind::Time | KeyKind::NullableTime, serde_json::Value::Number(n)) => n
                .as_i64()
                .and_then(DateTime::from_timestamp_micros)
                // Within what PostgreSQL stores (and what this service writes).
                .filter(|t| (1..=9999).contains(&chrono::Datelike::year(t)))
                .map(SortKey::Time),
            (KeyKind::NullableTime, serde_json::Value::Null) => Some(SortKey::Null),
            _ => None,
        };
        match key {
            Some(key) if wire.i > 0 => Ok((key, wire.i)),
            _ => Err(bad("not a cursor")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_is_refused_by_another_list() {
        let shape = ListShape::new("CREATED_AT", true, KeyKind::Time, "status=Some(1)");
        let at = DateTime::from_timestamp_micros(1_763_800_000_123_456).unwrap();
        let cursor = shape.encode(&SortKey::Time(at), 42);
        assert_eq!(shape.decode(&cursor, "after").unwrap(), (SortKey::Time(at), 42));
        let other_filter = ListShape::new("CREATED_AT", true, KeyKind::Time, "status=Some(2)");
        assert!(other_filter.decode(&cursor, "after").unwrap_err().to_string().contains("another filter"));
        let other_sort = ListShape::new("CREATED_AT", false, KeyKind::Time, "status=Some(1)");
        assert!(other_sort.decode(&cursor, "after").unwrap_err().to_string().contains("another sort"));
        for junk in ["", "abc", "!!!!", &"A".repeat(600)] {
            assert!(shape.decode(junk, "after").is_err(), "{junk}");
        }
        let far = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&serde_json::json!({"v": 1, "s": "CREATED_AT", "d": true, "f": shape.fingerprint, "k": -220_000_000_000_000_000i64, "i": 1}))
                .unwrap(),
        );
        assert!(shape.decode(&far, "after").is_err(), "a time PostgreSQL cannot store");
        let small = ListShape::new("STATUS", true, KeyKind::SmallInt, "");
        assert!(small.decode(&small.encode(&SortKey::Int(70_000), 1), "after").is_err());
    }

    #[test]
    fn the_two_ways_to_page_do_not_mix() {
        let args = |f: fn(&mut PagingArgs)| {
            let mut a = PagingArgs::default();
            f(&mut a);
            Window::from_args(a)
        };
        assert!(matches!(args(|_| {}), Ok(Window::Pages(_))));
        assert!(args(|a| (a.first, a.page) = (Some(5), Some(1))).is_err());
        assert!(args(|a| (a.first, a.last) = (Some(5), Some(5))).is_err());
        assert!(args(|a| (a.first, a.before) = (Some(5), Some("x".into()))).is_err());
        assert!(args(|a| a.first = Some(0)).is_err());
        assert!(args(|a| a.last = Some(101)).is_err());
        assert_eq!(
            args(|a| a.after = Some("c".into())).unwrap(),
            Window::Keyset(KeysetRequest { size: 20, backward: false, cursor: Some("c".into()), count_total: true })
        );
    }
}
