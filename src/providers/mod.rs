//! Payment providers: one trait, two implementations. `manual` makes no external calls;
//! `stripe` speaks Stripe's REST API. Callers never hold a database transaction open
//! while a provider call runs.

mod manual;
mod stripe;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::{Config, ProviderKind};
use crate::money::Currency;

pub use manual::ManualProvider;
pub use stripe::{AUTHORIZATION_EXPIRED, StripeProvider};

/// What went wrong talking to a provider. The variants say whether the provider may have
/// acted: `Unreachable`, `Rejected`, `NotConfigured` and `Busy` are definite (nothing was
/// done), `Ambiguous` is not (the request may have been carried out).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No connection was made: the request was never sent.
    #[error("the payment provider could not be reached: {0}")]
    Unreachable(String),
    /// The provider answered with a definite refusal (a 4xx such as an invalid request or
    /// a declined card): nothing was done.
    #[error("the payment provider refused the request: {0}")]
    Rejected(String),
    /// The request may have been carried out, but no definite answer came back: a timeout,
    /// a reset connection, 429, 409 (the same idempotency key in use), a 5xx, or a success
    /// whose body could not be read. Only the provider can say what happened.
    #[error("the payment provider gave no definite answer: {0}")]
    Ambiguous(String),
    #[error("{0}")]
    NotConfigured(String),
    /// Every slot for provider calls stayed taken for the whole wait: nothing was sent.
    #[error("the payment provider is busy: too many calls are in flight; nothing was sent, retry later")]
    Busy,
}

/// State of a payment at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderPaymentStatus {
    Pending,
    /// The amount is reserved and waits to be captured (Stripe `requires_capture`).
    Authorized,
    Succeeded,
    Failed,
    Cancelled,
}

/// A payment as the provider reports it.
#[derive(Debug, Clone)]
pub struct ProviderPayment {
    pub status: ProviderPaymentStatus,
    /// The provider's own status word, kept in events.
    pub raw_status: String,
    pub reference: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    /// Minor units the provider received, when it says.
    pub amount_received: Option<i64>,
    /// The currency of the payment at the provider (upper case), when it says.
    pub currency: Option<String>,
    /// When the money became available to the merchant, how much of it (net of the
    /// provider's fees) and in which currency (upper case), once the provider says it
    /// settled.
    pub settled: Option<(DateTime<Utc>, i64, String)>,
    /// With status `Authorized`: the minor units reserved, when the provider says.
    pub capturable: Option<i64>,
    /// The payment was created to be captured later (Stripe `capture_method=manual`): a
    /// success may have taken part of its amount.
    pub manual_capture: bool,
}

/// A card as a client gave it, on its way to the provider and nowhere else. It has no
/// `Serialize`, and its `Debug` shows only the last four digits, so it cannot reach a log
/// or a stored row by accident.
#[derive(Clone)]
pub struct CardDetails {
    /// Digits only (checked: 13 to 19, Luhn).
    pub number: String,
    pub exp_month: u8,
    /// Four digits.
    pub exp_year: u16,
    /// Three or four digits.
    pub cvc: String,
    pub name: Option<String>,
}

impl CardDetails {
    pub fn last4(&self) -> &str {
        let cut = self.number.len().saturating_sub(4);
        self.number.get(cut..).unwrap_or_default()
    }
}

impl std::fmt::Debug for CardDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardDetails(**** {}, {:02}/{})", self.last4(), self.exp_month, self.exp_year)
    }
}

/// What may be shown of a card: the provider's answer about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardShown {
    pub brand: Option<String>,
    pub last4: String,
    pub exp_month: Option<i16>,
    pub exp_year: Option<i16>,
}

/// What starting a payment gave.
#[derive(Debug, Clone, Default)]
pub struct Started {
    /// The provider's payment intent, if it has one.
    pub intent_id: Option<String>,
    /// The card it was started with, as the provider describes it.
    pub card: Option<CardShown>,
}

/// A new payment to start.
#[derive(Debug, Clone)]
pub struct StartPayment<'a> {
    pub order_id: i64,
    pub order_number: &'a str,
    pub amount_cents: i64,
    pub currency: &'a str,
    pub payment_method: &'a str,
    /// Sent as the provider's idempotency key so a retried start creates one payment.
    pub idempotency_key: &'a str,
    /// A card to pay with: the provider attaches it to the payment, which
    /// [`PaymentProvider::confirm_payment`] then confirms (after it was recorded).
    pub card: Option<&'a CardDetails>,
    /// Reserve the amount only; [`PaymentProvider::capture_payment`] takes it later.
    pub manual_capture: bool,
}

/// A refund to send.
#[derive(Debug, Clone)]
pub struct RefundRequest<'a> {
    /// This service's refund id, sent along (Stripe metadata) to find the refund again.
    pub refund_id: i64,
    pub payment_intent_id: Option<&'a str>,
    pub amount_cents: i64,
    /// Sent as the provider's idempotency key: a retried refund is refunded once.
    pub idempotency_key: &'a str,
}

/// Where a refund stands at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderRefundStatus {
    /// The money went back.
    Succeeded,
    /// Accepted, not yet settled (Stripe `pending`, `requires_action`): ask again later.
    Pending,
    /// The provider gave up on it (Stripe `failed`, `canceled`): no money went back.
    Failed,
}

/// A refund as the provider reports it.
#[derive(Debug, Clone)]
pub struct ProviderRefund {
    pub id: Option<String>,
    pub status: ProviderRefundStatus,
    /// The provider's own status word, kept in events.
    pub raw_status: String,
}

#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync {
    /// The `provider` recorded on payment attempts.
    fn name(&self) -> &'static str;

    /// Whether the provider takes a payment of `amount` minor units of `currency`; the
    /// reason when it does not. Checked before calling out, so a payment it would refuse
    /// is refused here, plainly, with nothing created.
    fn check_amount(&self, _amount: i64, _currency: Currency) -> Result<(), String> {
        Ok(())
    }

    /// Whether the provider takes card details to confirm a payment with.
    fn takes_cards(&self) -> bool {
        false
    }

    /// Starts a payment: its payment intent id, if the provider has one, and with a card,
    /// the card as the provider describes it and where the payment stands.
    async fn start_payment(&self, request: &StartPayment<'_>) -> Result<Started, ProviderError>;

    /// Confirms a payment started with a card: the provider takes the money now. Sending
    /// it again with the same idempotency key confirms once.
    async fn confirm_payment(
        &self,
        _payment_intent_id: &str,
        _idempotency_key: &str,
    ) -> Result<ProviderPayment, ProviderError> {
        Err(ProviderError::Rejected("this provider confirms no payments".to_owned()))
    }

    /// Whether the provider can reserve an amount to capture later.
    fn takes_manual_capture(&self) -> bool {
        false
    }

    /// Captures `amount_cents` (at most what is reserved) of an authorised payment; the
    /// rest of the reservation is released. Sending it again with the same idempotency key
    /// captures once.
    async fn capture_payment(
        &self,
        _payment_intent_id: &str,
        _amount_cents: i64,
        _idempotency_key: &str,
    ) -> Result<ProviderPayment, ProviderError> {
        Err(ProviderError::Rejected("this provider captures no payments".to_owned()))
    }

    /// The current state of a payment at the provider.
    async fn fetch_payment(&self, payment_intent_id: &str) -> Result<ProviderPayment, ProviderError>;

    /// Cancels a payment that must not be paid any more (its order was cancelled). Providers
    /// without payable intents have nothing to do.
    async fn cancel_payment(&self, _payment_intent_id: &str) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Refunds (part of) a payment. Sending the same request again with the same
    /// idempotency key must not refund twice.
    async fn refund(&self, request: &RefundRequest<'_>) -> Result<ProviderRefund, ProviderError>;

    /// The refund this service asked for with `request` (found by the refund id it sent
    /// as metadata), or `None` when the provider holds none: then it never arrived, and
    /// sending it again is safe even after the provider forgot the idempotency key.
    async fn find_refund(&self, request: &RefundRequest<'_>) -> Result<Option<ProviderRefund>, ProviderError>;
}

/// The providers this process can use.
#[derive(Clone)]
pub struct Providers {
    default: ProviderKind,
    manual: Arc<ManualProvider>,
    stripe: Option<Arc<StripeProvider>>,
    /// The bulkhead: calls out to providers at once, at most, so a slow provider holds
    /// a bounded number of requests (and never a pooled connection: callers hold none).
    slots: Arc<tokio::sync::Semaphore>,
    slot_wait: std::time::Duration,
    /// When work whose outcome is unknown is asked about again (the janitor's schedule).
    rechecks: crate::config::JanitorConfig,
    /// How long one call may take.
    timeout: std::time::Duration,
}

/// A slot for one provider call; released when dropped.
pub struct Slot(#[expect(dead_code, reason = "held for its Drop")] tokio::sync::OwnedSemaphorePermit);

impl Providers {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let stripe = if config.payment_provider == ProviderKind::Stripe || !config.stripe_secret_key.is_empty() {
            Some(Arc::new(StripeProvider::new(
                &config.stripe_api_base,
                &config.stripe_secret_key,
                config.provider_timeout,
            )?))
        } else {
            None
        };
        Ok(Self {
            default: config.payment_provider,
            manual: Arc::new(ManualProvider),
            stripe,
            slots: Arc::new(tokio::sync::Semaphore::new(config.provider_concurrency.max(1))),
            slot_wait: config.provider_slot_wait,
            rechecks: config.janitor.clone(),
            timeout: config.provider_timeout,
        })
    }

    /// The longest one look at a refund can take: a slot, a lookup and a send.
    pub fn longest_check(&self) -> std::time::Duration {
        self.slot_wait + 2 * self.timeout
    }

    /// Whether a provider that can be asked about unknown outcomes is configured.
    pub fn can_be_asked(&self) -> bool {
        self.stripe.is_some()
    }

    /// When work begun (or last checked) at `from` is asked about next, after `checks`
    /// checks so far.
    pub fn next_check(&self, from: DateTime<Utc>, checks: i32) -> DateTime<Utc> {
        let delay = chrono::Duration::from_std(self.rechecks.delay(checks)).unwrap_or(chrono::Duration::days(1));
        from.checked_add_signed(delay).unwrap_or(from)
    }

    /// Waits for a slot to call a provider; `Busy` when none frees within the wait (then
    /// nothing was sent, so the caller may treat it as a definite failure).
    pub async fn slot(&self) -> Result<Slot, ProviderError> {
        match tokio::time::timeout(self.slot_wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Slot(permit)),
            _ => Err(ProviderError::Busy),
        }
    }

    /// Runs one provider call in a slot: the call starts only once a slot is free (a future
    /// does nothing until awaited), and `Busy` comes back when none frees within the wait.
    pub async fn in_slot<T>(&self, call: impl Future<Output = Result<T, ProviderError>>) -> Result<T, ProviderError> {
        let _slot = self.slot().await?;
        call.await
    }

    /// The provider that handles new payment attempts (`PAYMENT_PROVIDER`).
    pub fn for_new_payments(&self) -> Result<&dyn PaymentProvider, ProviderError> {
        match self.default {
            ProviderKind::Manual => Ok(self.manual.as_ref()),
            ProviderKind::Stripe => self.named("stripe"),
        }
    }

    /// The provider of an existing attempt, by its recorded name.
    pub fn named(&self, name: &str) -> Result<&dyn PaymentProvider, ProviderError> {
        match name {
            "stripe" => self
                .stripe
                .as_deref()
                .map(|s| s as &dyn PaymentProvider)
                .ok_or_else(|| ProviderError::NotConfigured("the stripe provider is not configured".to_owned())),
            _ => Ok(self.manual.as_ref()),
        }
    }
}
