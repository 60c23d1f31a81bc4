//! The shapes of seed 001: an order as the GraphQL operation selects it, and as the face
//! answers it (snake_case, UUID `id`, `pay_amount` in major units, seed statuses).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::StoreError;
use crate::money::Currency;

/// The selection every operation of this face uses.
pub const ORDER_FIELDS: &str = "fragment StoreOrder on Order {
    publicId totalCents currency merchantStatus paymentMethod paymentStatus paidAt createdAt updatedAt
    store { id storeName officeName }
    merchant { id displayName }
    paymentRequest { customerId customerOrderId description successUrl cancelUrl callbackUrl consumerEmail
        consumerPhone paymentType installmentTerm paymentDate paymentUrl updatedAt }
    userId payMethod
}";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlStore {
    pub id: Uuid,
    pub store_name: String,
    pub office_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlMerchant {
    pub id: Uuid,
    pub display_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlRequest {
    pub customer_id: Option<String>,
    pub customer_order_id: Option<String>,
    pub description: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub callback_url: Option<String>,
    pub consumer_email: Option<String>,
    pub consumer_phone: Option<String>,
    pub payment_type: String,
    pub installment_term: Option<i32>,
    pub payment_date: Option<DateTime<Utc>>,
    pub payment_url: String,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlStoreOrder {
    pub public_id: Uuid,
    pub total_cents: i64,
    pub currency: String,
    pub merchant_status: String,
    pub payment_status: String,
    pub created_at: DateTime<Utc>,
    pub store: Option<GqlStore>,
    pub merchant: Option<GqlMerchant>,
    pub payment_request: Option<GqlRequest>,
    pub user_id: Option<String>,
    pub pay_method: Option<String>,
}

/// `store` of seed 001.
#[derive(Serialize, ToSchema)]
pub struct SeedStore {
    pub id: Uuid,
    pub store_name: String,
    pub office_name: String,
}

/// `merchant` of seed 001.
#[derive(Serialize, ToSchema)]
pub struct SeedMerchant {
    pub id: Uuid,
    pub display_name: String,
}

/// An order as seed 001 shows it.
#[derive(Serialize, ToSchema)]
pub struct SeedOrder {
    /// The order's public id.
    pub id: Uuid,
    /// The amount in major units of `currency` (JPY 1000 is `1000.0`, USD 10.23 is `10.23`).
    #[schema(value_type = f64, example = 1000.0)]
    pub pay_amount: serde_json::Value,
    #[schema(example = "JPY")]
    pub currency: String,
    pub customer_id: Option<String>,
    pub customer_order_id: Option<String>,
    pub description: Option<String>,
    /// Always null: buyers are not known by a consumer id here (see `user_id`).
    pub consumer_id: Option<String>,
    pub store: Option<SeedStore>,
    pub merchant: Option<SeedMerchant>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub callback_url: Option<String>,
    /// TEMPORARY_SAVE, WAITING_FOR_PAYMENT, OTP_CONFIRMING, OTP_TIMEOUT, AUTHENTICATING_3DS,
    /// TIMEOUT_3DS, PROCESSING, COMPLETE, REFUNDED, CANCEL or ERROR.
    #[schema(example = "WAITING_FOR_PAYMENT")]
    pub status: String,
    /// Always null (the creating key is in the order's events).
    pub user_create: Option<String>,
    /// `2022-07-25T05:34:31.631+00:00`.
    pub create_date: String,
    pub user_update: Option<String>,
    pub update_date: Option<String>,
    pub payment_url: String,
    /// The seed's payment method code (`"0"` credit card … `"5"` Apple Pay) once a payment
    /// started; null before.
    pub pay_method: Option<String>,
    /// The number of installments (INSTALLMENT), else null.
    pub pay_times: Option<i32>,
    pub consumer_email: Option<String>,
    pub consumer_phone: Option<String>,
    /// The buyer's user id, once known.
    pub user_id: Option<String>,
    /// The payment date the merchant set (`date_payment`).
    pub date_payment: Option<String>,
    #[schema(example = "ONE_TIME")]
    pub selected_payment_type: String,
    pub selected_installment_term: Option<i32>,
}

/// Seed 001's timestamp form: milliseconds and an explicit `+00:00`.
pub fn seed_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string()
}

/// Minor units as the face's major-unit JSON number.
pub fn major(currency: &str, minor: i64) -> Result<serde_json::Value, StoreError> {
    Ok(Currency::of_stored(currency)?.to_major_json(minor)?)
}

impl TryFrom<GqlStoreOrder> for SeedOrder {
    type Error = StoreError;

    fn try_from(o: GqlStoreOrder) -> Result<Self, StoreError> {
        let request = o.payment_request;
        let started = o.payment_status != "UNPAID";
        let pay_method = o.pay_method.filter(|_| started).and_then(|name| {
            crate::domain::merchants::status::PayMethod::ALL
                .iter()
                .find(|m| serde_json::to_value(m).ok().and_then(|v| v.as_str().map(|s| s == name)).unwrap_or(false))
                .map(|m| m.code().to_string())
        });
        let r = request.as_ref();
        Ok(SeedOrder {
            id: o.public_id,
            pay_amount: major(&o.currency, o.total_cents)?,
            currency: o.currency,
            customer_id: r.and_then(|r| r.customer_id.clone()),
            customer_order_id: r.and_then(|r| r.customer_order_id.clone()),
            description: r.and_then(|r| r.description.clone()),
            consumer_id: None,
            store: o.store.map(|s| SeedStore { id: s.id, store_name: s.store_name, office_name: s.office_name }),
            merchant: o.merchant.map(|m| SeedMerchant { id: m.id, display_name: m.display_name }),
            success_url: r.and_then(|r| r.success_url.clone()),
            cancel_url: r.and_then(|r| r.cancel_url.clone()),
            callback_url: r.and_then(|r| r.callback_url.clone()),
            status: o.merchant_status,
            user_create: None,
            create_date: seed_time(o.created_at),
            user_update: None,
            update_date: r.and_then(|r| r.updated_at).map(seed_time),
            payment_url: r.map(|r| r.payment_url.clone()).unwrap_or_default(),
            pay_method,
            pay_times: r.and_then(|r| r.installment_term),
            consumer_email: r.and_then(|r| r.consumer_email.clone()),
            consumer_phone: r.and_then(|r| r.consumer_phone.clone()),
            user_id: o.user_id,
            date_payment: r.and_then(|r| r.payment_date).map(seed_time),
            selected_payment_type: r.map_or_else(|| "ONE_TIME".to_owned(), |r| r.payment_type.clone()),
            selected_installment_term: r.and_then(|r| r.installment_term),
        })
    }
}
