use super::{
    PaymentProvider, ProviderError, ProviderPayment, ProviderRefund, ProviderRefundStatus, RefundRequest, StartPayment,
    Started,
};

/// Payments recorded by staff: nothing leaves the service.
pub struct ManualProvider;

#[async_trait::async_trait]
impl PaymentProvider for ManualProvider {
    fn name(&self) -> &'static str {
        "manual"
    }

    async fn start_payment(&self, request: &StartPayment<'_>) -> Result<Started, ProviderError> {
        if request.card.is_some() {
            return Err(ProviderError::Rejected("the manual provider takes no card details".to_owned()));
        }
        Ok(Started::default())
    }

    async fn fetch_payment(&self, _payment_intent_id: &str) -> Result<ProviderPayment, ProviderError> {
        Err(ProviderError::Rejected("manual payments have no provider state to fetch".to_owned()))
    }

    async fn refund(&self, _request: &RefundRequest<'_>) -> Result<ProviderRefund, ProviderError> {
        Ok(ProviderRefund { id: None, status: ProviderRefundStatus::Succeeded, raw_status: "succeeded".to_owned() })
    }

    async fn find_refund(&self, _request: &RefundRequest<'_>) -> Result<Option<ProviderRefund>, ProviderError> {
        Ok(None)
    }
}
