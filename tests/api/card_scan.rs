//! The suite's watch for card data: every response the in-process router gives
//! (`TestApp::send`) and every log line the service writes while the suite runs (a global
//! subscriber at debug level) is scanned for card numbers (13 to 19 digits starting with 3
//! to 6, the card networks' first digits) and for security-code fields. A finding fails the
//! test that made the request, or, for a log line, the next request of any test.

use std::sync::{Mutex, Once};

static FOUND_IN_LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether `digits` pass the card networks' check digit (Luhn).
fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// What looks like card data in `text` (a Luhn-valid number, or a security-code field),
/// masked for the report.
pub fn card_data(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let run = &text[start..i];
            // Digits inside a word (a hex request id) or of a decimal fraction (a latency of
            // 4.3123…) are not a card number.
            let joined = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'.');
            let inside = joined(start.checked_sub(1).and_then(|s| bytes.get(s))) || joined(bytes.get(i));
            if !inside && (13..=19).contains(&run.len()) && matches!(run.as_bytes()[0], b'3'..=b'6') && luhn(run) {
                return Some(format!("a {}-digit number {}…{}", run.len(), &run[..2], &run[run.len() - 2..]));
            }
        } else {
            i += 1;
        }
    }
    let lower = text.to_ascii_lowercase();
    for field in ["\"cvv\"", "\"cvc\"", "cvv=", "cvc=", "card[cvc]", "card[number]", "\"number\":\"4"] {
        if let Some(at) = lower.find(field) {
            let after = &lower[at + field.len()..];
            let value = after.trim_start_matches([':', ' ', '"', '=']);
            if !value.starts_with("null") && !value.is_empty() {
                return Some(format!("a field {field}"));
            }
        }
    }
    None
}

/// Panics when a response body holds card data.
pub fn check_response(what: &str, body: &[u8]) {
    if let Some(found) = card_data(&String::from_utf8_lossy(body)) {
        panic!("card data in the response to {what}: {found}");
    }
    let logged = FOUND_IN_LOGS.lock().map(|found| found.clone()).unwrap_or_default();
    assert!(logged.is_empty(), "card data in the service's logs: {logged:?}");
}

struct Scanner;

impl std::io::Write for Scanner {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(found) = card_data(&String::from_utf8_lossy(buf))
            && let Ok(mut all) = FOUND_IN_LOGS.lock()
        {
            all.push(found);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the log scanner once for the whole test binary.
pub fn watch_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("billing_api=debug,warn"))
            .with_writer(|| Scanner)
            .with_ansi(false)
            .finish();
        // Another subscriber set first (none is, today) keeps its place.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

#[test]
fn the_scanner_finds_card_numbers_and_security_codes() {
    assert!(card_data(r#"{"number":"4242424242424242"}"#).is_some());
    assert!(card_data("card 5555 5555 5555 4444").is_none(), "separated groups are not one run");
    assert!(card_data("pan=378282246310005 ok").is_some());
    assert!(card_data("amount 5000000000000 is too much").is_none(), "an amount fails the check digit");
    assert!(card_data(r#"{"cvv": "321"}"#).is_some());
    assert!(card_data(r#"{"cvc":null}"#).is_none());
    assert!(card_data("at 1763845200123 ms, order 42, 9007199254740991").is_none());
    assert!(card_data("latency_ms=4.312345678901295").is_none(), "a fraction's digits");
    assert!(card_data("request_id=da23876ca584838035991292").is_none(), "digits inside a hex word");
}
