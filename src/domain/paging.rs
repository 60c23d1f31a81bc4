//! Page arithmetic shared by every list.

use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::task::JoinHandle;

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
    /// All matching items, when the request asked for them.
    pub total_count: Total,
    /// Whether a later page has items (known from one extra row, not from the count).
    pub has_next_page: bool,
    /// Whether an earlier page has items: a page number past 1, or (by cursor) a cursor to
    /// start after, or one more row ahead when paging backward.
    pub has_previous_page: bool,
    /// Each node's cursor, in the order of `nodes`.
    pub cursors: Vec<String>,
    /// Paged by cursor: page numbers mean nothing for this page.
    pub by_cursor: bool,
}

impl<T> Page<T> {
    /// A page with nothing on it.
    pub fn empty(window: &super::cursor::Window) -> Self {
        let total_count = if window.count_total() { Total::Known(0) } else { Total::NotAsked };
        let (request, by_cursor) = match window {
            super::cursor::Window::Pages(p) => (*p, false),
            super::cursor::Window::Keyset(k) => {
                (PageRequest { page: 1, per_page: k.size, count_total: k.count_total }, true)
            }
        };
        Self {
            nodes: Vec::new(),
            request,
            total_count,
            has_next_page: false,
            has_previous_page: false,
            cursors: Vec::new(),
            by_cursor,
        }
    }
}

/// The total count of a list. A count visits every matching row, so it runs in a task of
/// its own, on its own connection, while the page and its nested lists load; whoever needs
/// the number awaits it (any number of times: the outcome is shared).
#[derive(Clone)]
pub enum Total {
    /// The request did not ask for a total.
    NotAsked,
    Known(i64),
    Counting(Shared<BoxFuture<'static, Result<i64, Arc<AppError>>>>),
}

impl std::fmt::Debug for Total {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAsked => f.write_str("NotAsked"),
            Self::Known(n) => write!(f, "Known({n})"),
            Self::Counting(_) => f.write_str("Counting"),
        }
    }
}

/// Aborts a task when dropped (a count nobody waits for any more).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Total {
    /// Starts `count` now, in its own task, charged to the current request's budget. The
    /// task ends with the request: when nothing holds the total any more, it is aborted.
    pub fn spawn(count: impl Future<Output = AppResult<i64>> + Send + 'static) -> Self {
        let task: JoinHandle<AppResult<i64>> = match crate::db::budget::current() {
            Some(budget) => tokio::spawn(budget.scope(count)),
            None => tokio::spawn(count),
        };
        let guard = AbortOnDrop(task.abort_handle());
        let outcome = async move {
            let _guard = guard;
            match task.await {
                Ok(counted) => counted.map_err(Arc::new),
                Err(join) => Err(Arc::new(AppError::internal(join))),
            }
        };
        Self::Counting(outcome.boxed().shared())
    }

    /// The count, or `None` when it was not asked for.
    pub async fn get(&self) -> Result<Option<i64>, Arc<AppError>> {
        match self {
            Self::NotAsked => Ok(None),
            Self::Known(n) => Ok(Some(*n)),
            Self::Counting(outcome) => outcome.clone().await.map(Some),
        }
    }
}
