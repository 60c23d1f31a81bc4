//! Stripe's REST API: PaymentIntents to pay, Refunds (with an idempotency key) to refund.
//! The base URL is configurable so tests run against a local fake (localstripe).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{
    CardShown, PaymentProvider, ProviderError, ProviderPayment, ProviderPaymentStatus, ProviderRefund,
    ProviderRefundStatus, RefundRequest, StartPayment, Started,
};
use crate::money::Currency;

/// The failure code of an authorisation the provider released because nobody captured it.
pub const AUTHORIZATION_EXPIRED: &str = "authorization_expired";

pub struct StripeProvider {
    http: reqwest::Client,
    base: String,
    secret_key: String,
}

#[derive(Deserialize)]
struct StripeErrorBody {
    error: StripeError,
}

#[derive(Deserialize)]
struct StripeError {
    message: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
}

#[derive(Deserialize)]
struct PaymentIntent {
    id: String,
    status: String,
    #[serde(default)]
    last_payment_error: Option<StripeError>,
    #[serde(default)]
    latest_charge: Option<serde_json::Value>,
    #[serde(default)]
    created: Option<i64>,
    #[serde(default)]
    amount_received: Option<i64>,
    #[serde(default)]
    amount: Option<i64>,
    #[serde(default)]
    amount_capturable: Option<i64>,
    #[serde(default)]
    cancellation_reason: Option<String>,
    #[serde(default)]
    capture_method: Option<String>,
    #[serde(default)]
    currency: Option<String>,
}

#[derive(Deserialize)]
struct PaymentMethod {
    id: String,
    #[serde(default)]
    card: Option<PaymentMethodCard>,
}

#[derive(Deserialize)]
struct PaymentMethodCard {
    brand: Option<String>,
    last4: Option<String>,
    exp_month: Option<i16>,
    exp_year: Option<i16>,
}

#[derive(Deserialize)]
struct Refund {
    id: String,
    status: Option<String>,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct RefundList {
    data: Vec<Refund>,
    #[serde(default)]
    has_more: bool,
}

fn map_refund(refund: Refund) -> ProviderRefund {
    // A refund without a status says nothing settled yet.
    let raw_status = refund.status.unwrap_or_else(|| "pending".to_owned());
    let status = match raw_status.as_str() {
        "succeeded" => ProviderRefundStatus::Succeeded,
        "failed" | "canceled" => ProviderRefundStatus::Failed,
        // pending, requires_action, and anything new: not settled yet.
        _ => ProviderRefundStatus::Pending,
    };
    ProviderRefund { id: Some(refund.id), status, raw_status }
}

impl StripeProvider {
    pub fn new(base: &str, secret_key: &str, timeout: Duration) -> anyhow::Result<Self> {
        let http =
            reqwest::Client::builder().timeout(timeout).connect_timeout(Duration::from_secs(3).min(timeout)).build()?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned(), secret_key: secret_key.to_owned() })
    }

    /// Sends one request and classifies what came back: a connection never made is
    /// `Unreachable` (nothing was sent); a timeout, a reset, 409, 429 or 5xx, or a success
    /// that cannot be read, is `Ambiguous` (Stripe may have acted); other 4xx are
    /// `Rejected` (Stripe did nothing).
    async fn send<T: for<'de> Deserialize<'de>>(&self, request: reqwest::RequestBuilder) -> Result<T, ProviderError> {
        let lost = |e: reqwest::Error| {
            let e = e.without_url();
            if e.is_connect() {
                ProviderError::Unreachable(e.to_string())
            } else {
                ProviderError::Ambiguous(e.to_string())
            }
        };
        let response = request.bearer_auth(&self.secret_key).send().await.map_err(lost)?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| ProviderError::Ambiguous(e.without_url().to_string()))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<StripeErrorBody>(&body)
                .ok()
                .and_then(|b| b.error.message)
                .unwrap_or_else(|| format!("HTTP {status}"));
            let ambiguous = status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::CONFLICT
                || status == reqwest::StatusCode::REQUEST_TIMEOUT;
            return Err(if ambiguous { ProviderError::Ambiguous(message) } else { ProviderError::Rejected(message) });
        }
        serde_json::from_slice(&body).map_err(|e| ProviderError::Ambiguous(format!("unreadable answer: {e}")))
    }
}

/// Settlement from a charge whose balance transaction was expanded: settled once the
/// transaction is `available`, on its `available_on`, for its `net` (after Stripe's fees).
fn settlement(charge: Option<&serde_json::Value>) -> Option<(DateTime<Utc>, i64, String)> {
    let txn = charge?.get("balance_transaction")?;
    if txn.get("status")?.as_str()? != "available" {
        return None;
    }
    let at = DateTime::<Utc>::from_timestamp(txn.get("available_on")?.as_i64()?, 0)?;
    let currency = txn.get("currency")?.as_str()?.to_ascii_uppercase();
    Some((at, txn.get("net")?.as_i64()?, currency))
}

fn map_intent(intent: PaymentIntent) -> ProviderPayment {
    let settled = settlement(intent.latest_charge.as_ref());
    let status = match intent.status.as_str() {
        "succeeded" => ProviderPaymentStatus::Succeeded,
        "requires_capture" => ProviderPaymentStatus::Authorized,
        "canceled" => ProviderPaymentStatus::Cancelled,
        // A failed attempt returns the intent to requires_payment_method with the error.
        "requires_payment_method" if intent.last_payment_error.is_some() => ProviderPaymentStatus::Failed,
        _ => ProviderPaymentStatus::Pending,
    };
    let (failure_code, failure_message) = match (&status, intent.last_payment_error) {
        (ProviderPaymentStatus::Failed, Some(error)) => {
            (error.decline_code.or(error.code).or(Some("card_declined".to_owned())), error.message)
        }
        // Stripe cancels an authorisation nobody captured in time with reason `automatic`.
        (ProviderPaymentStatus::Cancelled, _) => match intent.cancellation_reason.as_deref() {
            Some("automatic") => (Some(AUTHORIZATION_EXPIRED.to_owned()), None),
            Some(reason) => (Some(format!("cancelled_{reason}")), None),
            None => (None, None),
        },
        _ => (None, None),
    };
    // Stripe reports what is capturable; an older answer without it reserved the amount.
    let capturable = (status == ProviderPaymentStatus::Authorized)
        .then(|| intent.amount_capturable.filter(|a| *a > 0).or(intent.amount))
        .flatten();
    let reference = match intent.latest_charge {
        Some(serde_json::Value::String(charge)) => Some(charge),
        Some(serde_json::Value::Object(charge)) => charge.get("id").and_then(|v| v.as_str()).map(str::to_owned),
        _ => None,
    }
    .or_else(|| Some(intent.id.clone()));
    let paid_at = (status == ProviderPaymentStatus::Succeeded)
        .then(|| intent.created.and_then(|t| DateTime::<Utc>::from_timestamp(t, 0)))
        .flatten();
    ProviderPayment {
        settled,
        status,
        raw_status: intent.status,
        reference,
        failure_code,
        failure_message,
        paid_at,
        amount_received: intent.amount_received,
        currency: intent.currency.map(|c| c.to_ascii_uppercase()),
        capturable,
        manual_capture: intent.capture_method.as_deref() == Some("manual"),
    }
}

#[async_trait::async_trait]
impl PaymentProvider for StripeProvider {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn check_amount(&self, amount: i64, currency: Currency) -> Result<(), String> {
        // Stripe's limits: at most eight digits in the minor unit, and a minimum charge per
        // currency (its published table; currencies not listed are left to Stripe).
        const MAX_MINOR: i64 = 99_999_999;
        const MINIMUM_MINOR: &[(&str, i64)] =
            &[("USD", 50), ("EUR", 50), ("GBP", 30), ("CAD", 50), ("AUD", 50), ("CHF", 50), ("JPY", 50)];
        if amount > MAX_MINOR {
            return Err(format!(
                "stripe takes at most {} {} in one payment (got {} {})",
                currency.to_major(MAX_MINOR),
                currency.code(),
                currency.to_major(amount),
                currency.code()
            ));
        }
        if let Some((_, minimum)) = MINIMUM_MINOR.iter().find(|(code, _)| *code == currency.code())
            && amount < *minimum
        {
            return Err(format!(
                "stripe takes at least {} {} in one payment (got {} {})",
                currency.to_major(*minimum),
                currency.code(),
                currency.to_major(amount),
                currency.code()
            ));
        }
        Ok(())
    }

    fn takes_cards(&self) -> bool {
        true
    }

    async fn start_payment(&self, request: &StartPayment<'_>) -> Result<Started, ProviderError> {
        let mut form = vec![
            ("amount", request.amount_cents.to_string()),
            ("currency", request.currency.to_ascii_lowercase()),
            ("payment_method_types[]", "card".to_owned()),
            ("metadata[order_id]", request.order_id.to_string()),
            ("metadata[order_number]", request.order_number.to_owned()),
        ];
        if request.manual_capture {
            form.push(("capture_method", "manual".to_owned()));
        }
        let mut card_shown = None;
        if let Some(card) = request.card {
            // The card goes to Stripe as a payment method; only its id comes back to us.
            let mut card_form = vec![
                ("type", "card".to_owned()),
                ("card[number]", card.number.clone()),
                ("card[exp_month]", card.exp_month.to_string()),
                ("card[exp_year]", card.exp_year.to_string()),
                ("card[cvc]", card.cvc.clone()),
            ];
            if let Some(name) = &card.name {
                card_form.push(("billing_details[name]", name.clone()));
            }
            let method: PaymentMethod = self
                .send(
                    self.http
                        .post(format!("{}/v1/payment_methods", self.base))
                        .header("Idempotency-Key", format!("{}-method", request.idempotency_key))
                        .form(&card_form),
                )
                .await?;
            card_shown = Some(match method.card {
                Some(c) => CardShown {
                    brand: c.brand,
                    last4: c.last4.unwrap_or_else(|| card.last4().to_owned()),
                    exp_month: c.exp_month,
                    exp_year: c.exp_year,
                },
                None => CardShown { last4: card.last4().to_owned(), ..Default::default() },
            });
            // Attached, not confirmed: no money moves before the attempt is recorded.
            form.push(("payment_method", method.id));
        }
        let intent: PaymentIntent = self
            .send(
                self.http
                    .post(format!("{}/v1/payment_intents", self.base))
                    .header("Idempotency-Key", request.idempotency_key)
                    .form(&form),
            )
            .await?;
        Ok(Started { intent_id: Some(intent.id), card: card_shown })
    }

    async fn confirm_payment(
        &self,
        payment_intent_id: &str,
        idempotency_key: &str,
    ) -> Result<ProviderPayment, ProviderError> {
        let url = format!("{}/v1/payment_intents/{}/confirm", self.base, urlencode(payment_intent_id));
        let intent: PaymentIntent = self.send(self.http.post(url).header("Idempotency-Key", idempotency_key)).await?;
        Ok(map_intent(intent))
    }

    fn takes_manual_capture(&self) -> bool {
        true
    }

    async fn capture_payment(
        &self,
        payment_intent_id: &str,
        amount_cents: i64,
        idempotency_key: &str,
    ) -> Result<ProviderPayment, ProviderError> {
        let url = format!("{}/v1/payment_intents/{}/capture", self.base, urlencode(payment_intent_id));
        let form = [("amount_to_capture", amount_cents.to_string())];
        let intent: PaymentIntent =
            self.send(self.http.post(url).header("Idempotency-Key", idempotency_key).form(&form)).await?;
        Ok(map_intent(intent))
    }

    async fn cancel_payment(&self, payment_intent_id: &str) -> Result<(), ProviderError> {
        let url = format!("{}/v1/payment_intents/{}/cancel", self.base, urlencode(payment_intent_id));
        let intent: PaymentIntent = self.send(self.http.post(url)).await?;
        if intent.status != "canceled" {
            return Err(ProviderError::Rejected(format!("intent {} is {} after cancelling", intent.id, intent.status)));
        }
        Ok(())
    }

    async fn fetch_payment(&self, payment_intent_id: &str) -> Result<ProviderPayment, ProviderError> {
        let url = format!("{}/v1/payment_intents/{}", self.base, urlencode(payment_intent_id));
        // The charge's balance transaction says whether the money settled.
        let query = [("expand[]", "latest_charge.balance_transaction")];
        let intent: PaymentIntent = self.send(self.http.get(url).query(&query)).await?;
        Ok(map_intent(intent))
    }

    async fn refund(&self, request: &RefundRequest<'_>) -> Result<ProviderRefund, ProviderError> {
        let intent = request
            .payment_intent_id
            .ok_or_else(|| ProviderError::Rejected("the payment has no payment intent to refund".to_owned()))?;
        let form = [
            ("payment_intent", intent.to_owned()),
            ("amount", request.amount_cents.to_string()),
            ("metadata[refund_id]", request.refund_id.to_string()),
        ];
        let refund: Refund = self
            .send(
                self.http
                    .post(format!("{}/v1/refunds", self.base))
                    .header("Idempotency-Key", request.idempotency_key)
                    .form(&form),
            )
            .await?;
        Ok(map_refund(refund))
    }

    async fn find_refund(&self, request: &RefundRequest<'_>) -> Result<Option<ProviderRefund>, ProviderError> {
        let Some(intent) = request.payment_intent_id else { return Ok(None) };
        let wanted = request.refund_id.to_string();
        let url = format!("{}/v1/refunds", self.base);
        // Page through the payment's refunds (100 a page, at most 20 pages).
        let mut after: Option<String> = None;
        for _ in 0..20 {
            let mut query = vec![("payment_intent", intent.to_owned()), ("limit", "100".to_owned())];
            if let Some(after) = &after {
                query.push(("starting_after", after.clone()));
            }
            let list: RefundList = self.send(self.http.get(&url).query(&query)).await?;
            after = list.data.last().map(|r| r.id.clone());
            let has_more = list.has_more;
            let found = list.data.into_iter().find(|r| {
                r.metadata.as_ref().and_then(|m| m.get("refund_id")).and_then(|v| v.as_str()) == Some(wanted.as_str())
            });
            if let Some(found) = found {
                return Ok(Some(map_refund(found)));
            }
            if !has_more || after.is_none() {
                return Ok(None);
            }
        }
        Err(ProviderError::Ambiguous(format!("more than 2,000 refunds listed for {intent}")))
    }
}

/// Percent-encodes an id for a URL path segment.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
