//! What a client may say about a payment beyond its order (seed 002): description, billing
//! address, metadata, the `active` flag and the payment date; checked once for create and
//! update.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::super::lifecycle::text as trimmed_text;
use crate::db::models;
use crate::error::{AppError, AppResult};

/// A billing address (Stripe's address fields, plus a name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillingAddress {
    pub name: Option<String>,
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
}

impl BillingAddress {
    const FIELDS: [&'static str; 7] = ["name", "line1", "line2", "city", "state", "postal_code", "country"];

    /// Trims every part; refuses over-long parts and a country that is not two letters;
    /// an address with no part at all is refused too (clear it with null instead).
    pub fn validated(self, field: &str) -> AppResult<Self> {
        let part = |name: &str, value: Option<String>| trimmed_text(&format!("{field}.{name}"), value, 200);
        let address = Self {
            name: part("name", self.name)?,
            line1: part("line1", self.line1)?,
            line2: part("line2", self.line2)?,
            city: part("city", self.city)?,
            state: part("state", self.state)?,
            postal_code: part("postalCode", self.postal_code)?,
            country: part("country", self.country)?.map(|c| c.to_ascii_uppercase()),
        };
        if address.country.as_deref().is_some_and(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(AppError::bad_input(format!(
                "{field}.country must be an ISO 3166-1 alpha-2 code such as PT or US"
            )));
        }
        if address == Self::default() {
            return Err(AppError::bad_input(format!("{field} must have at least one part; send null to clear it")));
        }
        Ok(address)
    }

    pub fn to_json(&self) -> Value {
        let parts = [&self.name, &self.line1, &self.line2, &self.city, &self.state, &self.postal_code, &self.country];
        let mut map = Map::new();
        for (name, value) in Self::FIELDS.iter().zip(parts) {
            if let Some(value) = value {
                map.insert((*name).to_owned(), Value::String(value.clone()));
            }
        }
        Value::Object(map)
    }

    pub fn from_json(value: &Value) -> Self {
        let get = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        Self {
            name: get("name"),
            line1: get("line1"),
            line2: get("line2"),
            city: get("city"),
            state: get("state"),
            postal_code: get("postal_code"),
            country: get("country"),
        }
    }
}

/// The client's fields of a new payment.
#[derive(Debug, Clone, Default)]
pub struct PaymentDetailsInput {
    pub description: Option<String>,
    pub billing_address: Option<BillingAddress>,
    /// A JSON object (bounded as every client object is: `domain::json::object`).
    pub metadata: Option<Value>,
    pub active: Option<bool>,
    pub payment_date: Option<DateTime<Utc>>,
    /// A card to pay with now (providers that take cards only); never stored.
    pub card: Option<super::card::CardInput>,
    /// Reserve only; capture later (providers that can: stripe).
    pub manual_capture: bool,
}

impl PaymentDetailsInput {
    /// Checks every field; what it returns is ready to store.
    pub fn validated(&self) -> AppResult<models::PaymentDetails> {
        let this = self.clone();
        let description = trimmed_text("description", this.description, 500)?;
        let billing_address = this.billing_address.map(|a| a.validated("billingAddress")).transpose()?;
        let metadata = this.metadata.map(|m| crate::domain::json::object("metadata", Some(m))).transpose()?;
        check_date("paymentDate", this.payment_date)?;
        Ok(models::PaymentDetails {
            description,
            billing_address: billing_address.map(|a| a.to_json()),
            metadata,
            active: this.active,
            payment_date: this.payment_date,
            ..Default::default()
        })
    }
}

pub fn check_date(field: &str, date: Option<DateTime<Utc>>) -> AppResult<()> {
    if date.is_some_and(|d| !(1..=9999).contains(&chrono::Datelike::year(&d))) {
        return Err(AppError::bad_input(format!("{field} must be a date between the years 1 and 9999")));
    }
    Ok(())
}
