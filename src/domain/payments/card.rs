//! Card details in a create request: checked here, then handed to the provider and
//! dropped. Nothing of them but the brand, the last four digits and the expiry is kept, and
//! no message about them repeats what was sent.

use chrono::Datelike;

use crate::error::{AppError, AppResult};
use crate::providers::{CardDetails, CardShown};

/// A card as a client sent it.
#[derive(Clone, Default)]
pub struct CardInput {
    pub number: String,
    pub exp_month: i64,
    pub exp_year: i64,
    pub cvc: String,
    pub name: Option<String>,
}

impl std::fmt::Debug for CardInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardInput(redacted)")
    }
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

impl CardInput {
    /// Checks the card; the errors name the field and never its value.
    pub fn validated(self, field: &str, today: chrono::NaiveDate) -> AppResult<CardDetails> {
        let number: String = self.number.chars().filter(|c| *c != ' ' && *c != '-').collect();
        let digits: Vec<u8> = number.bytes().map(|b| b.wrapping_sub(b'0')).collect();
        if !(13..=19).contains(&digits.len()) || digits.iter().any(|d| *d > 9) {
            return Err(AppError::bad_input(format!("{field}.number must be 13 to 19 digits")));
        }
        if !luhn(&digits) {
            return Err(AppError::bad_input(format!("{field}.number is not a valid card number (check digit)")));
        }
        let exp_month = u8::try_from(self.exp_month)
            .ok()
            .filter(|m| (1..=12).contains(m))
            .ok_or_else(|| AppError::bad_input(format!("{field}.expMonth must be 1 to 12")))?;
        let year = if (0..100).contains(&self.exp_year) { self.exp_year + 2000 } else { self.exp_year };
        let exp_year = u16::try_from(year)
            .ok()
            .filter(|y| (2000..=2200).contains(y))
            .ok_or_else(|| AppError::bad_input(format!("{field}.expYear must be a year such as 2030")))?;
        let expired = (i32::from(exp_year), u32::from(exp_month)) < (today.year(), today.month());
        if expired {
            return Err(AppError::bad_input(format!("{field} has expired")));
        }
        let cvc = self.cvc.trim().to_owned();
        if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AppError::bad_input(format!("{field}.cvc must be 3 or 4 digits")));
        }
        let name = crate::domain::lifecycle::text(&format!("{field}.name"), self.name, 200)?;
        Ok(CardDetails { number, exp_month, exp_year, cvc, name })
    }
}

/// Keeps on a payment's details what may be shown of the card it was started with.
pub fn show_on(details: &mut crate::db::models::PaymentDetails, provider: Option<CardShown>, card: &CardDetails) {
    let shown = shown(provider, card);
    details.card_brand = shown.brand;
    details.card_last4 = Some(shown.last4);
    details.card_exp_month = shown.exp_month;
    details.card_exp_year = shown.exp_year;
}

/// What the provider said about the card, made safe to keep: four digits (ours if the
/// provider's are not), a short brand, an expiry in range.
fn shown(provider: Option<CardShown>, card: &CardDetails) -> CardShown {
    let provider = provider.unwrap_or_default();
    let last4 = if provider.last4.len() == 4 && provider.last4.bytes().all(|b| b.is_ascii_digit()) {
        provider.last4
    } else {
        card.last4().to_owned()
    };
    let brand = provider
        .brand
        .filter(|b| !b.is_empty() && b.len() <= 20 && b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'));
    CardShown { brand, last4, exp_month: Some(i16::from(card.exp_month)), exp_year: i16::try_from(card.exp_year).ok() }
}
