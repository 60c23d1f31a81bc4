//! Page arithmetic shared by every list.

use crate::error::{AppError, AppResult};

pub const DEFAULT_PER_PAGE: i64 = 20;
pub const MAX_PER_PAGE: i64 = 100;
/// Bounds the offset so it can never overflow and deep scans stay bounded.
pub const MAX_PAGE: i64 = 1_000_000;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: i64,
    pub per_page: i64,
    /// Whether the caller wants the total count. Counting visits every matching row, so
    /// a GraphQL query that does not select `totalCount` skips it (see docs/decisions.md).
    pub count_total: bool,
}

impl PageRequest {
    /// Validates page numbers; `page_name`/`per_page_name` are the argument names the
    /// caller used, so the message names what was wrong.
    pub fn new(page: i64, per_page: i64, page_name: &str, per_page_name: &str) -> AppResult<Self> {
        if !(1..=MAX_PAGE).contains(&page) {
            return Err(AppError::bad_input(format!("{page_name} must be between 1 and {MAX_PAGE} (got {page})")));
        }
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(AppError::bad_input(format!(
                "{per_page_name} must be between 1 and {MAX_PER_PAGE} (got {per_page})"
            )));
        }
        Ok(Self { page, per_page, count_total: true })
    }

    /// From GraphQL arguments `page`/`perPage`, where null means the default.
    pub fn from_args(page: Option<i32>, per_page: Option<i32>) -> AppResult<Self> {
        Self::new(page.map_or(1, i64::from), per_page.map_or(DEFAULT_PER_PAGE, i64::from), "page", "perPage")
    }

    /// The same page, without counting the matching rows.
    pub fn without_total(self) -> Self {
        Self { count_total: false, ..self }
    }

    pub fn offset(self) -> i64 {
        (self.page - 1) * self.per_page
    }
}

/// One page of results with the numbers a client needs to move through the list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub nodes: Vec<T>,
    pub request: PageRequest,
    /// All matching items; `None` when the request did not ask for it.
    pub total_count: Option<i64>,
    /// Whether a later page has items (known from one extra row, not from the count).
    pub has_next_page: bool,
}

impl<T> Page<T> {
    /// A page with nothing on it.
    pub fn empty(request: PageRequest) -> Self {
        Self { nodes: Vec::new(), request, total_count: request.count_total.then_some(0), has_next_page: false }
    }

    pub fn has_previous_page(&self) -> bool {
        self.request.page > 1
    }
}
