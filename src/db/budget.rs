//! The last line behind the cost analysis: a ceiling on the SQL statements one request
//! sends and the rows it loads. The budget of the request being executed lives in a
//! task-local, so the statement counter of every pooled connection charges whichever
//! request is using it, and loaders check it before they load more. Work outside a
//! request (the CLI, background tasks) has no budget and no ceiling.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::AppError;

/// What one request may spend.
#[derive(Debug)]
pub struct Budget {
    statements: AtomicU64,
    rows: AtomicU64,
    max_statements: u64,
    max_rows: u64,
}

tokio::task_local! {
    static BUDGET: Arc<Budget>;
}

impl Budget {
    pub fn new(max_statements: u64, max_rows: u64) -> Arc<Self> {
        Arc::new(Self { statements: AtomicU64::new(0), rows: AtomicU64::new(0), max_statements, max_rows })
    }

    /// Runs `work` with this budget as the current request's.
    pub async fn scope<F: Future>(self: Arc<Self>, work: F) -> F::Output {
        BUDGET.scope(self, work).await
    }

    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }
}

/// The current request's budget, to carry into a task it spawns.
pub fn current() -> Option<Arc<Budget>> {
    BUDGET.try_with(Arc::clone).ok()
}

/// Counts a statement against the current request (called by the connection counter).
pub(super) fn statement_sent() {
    let _ = BUDGET.try_with(|budget| budget.statements.fetch_add(1, Ordering::Relaxed));
}

/// Refuses to go on when the current request has sent its most statements.
pub fn check_statements() -> Result<(), AppError> {
    BUDGET
        .try_with(|budget| {
            if budget.statements() >= budget.max_statements {
                return Err(AppError::bad_input(format!(
                    "the query needs more than {} SQL statements (GRAPHQL_MAX_STATEMENTS): ask for fewer nested pages",
                    budget.max_statements
                )));
            }
            Ok(())
        })
        .unwrap_or(Ok(()))
}

/// Counts `rows` loaded for the current request; refused past its most.
pub fn charge_rows(rows: usize) -> Result<(), AppError> {
    BUDGET
        .try_with(|budget| {
            let total = budget.rows.fetch_add(rows as u64, Ordering::Relaxed) + rows as u64;
            if total > budget.max_rows {
                return Err(AppError::bad_input(format!(
                    "the query reads more than {} rows (GRAPHQL_MAX_ROWS): ask for smaller pages or fewer nested lists",
                    budget.max_rows
                )));
            }
            Ok(())
        })
        .unwrap_or(Ok(()))
}
