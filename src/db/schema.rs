// @generated-shape: mirrors `diesel print-schema` for migrations/. Keep in sync with up.sql.

diesel::table! {
    api_keys (id) {
        id -> Int8,
        name -> Text,
        role -> Text,
        user_id -> Nullable<Int8>,
        key_prefix -> Text,
        key_hash -> Text,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        merchant_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    balance_ledger (id) {
        id -> Int8,
        user_id -> Int8,
        amount_cents -> Int8,
        balance_after_cents -> Int8,
        kind -> Text,
        order_id -> Nullable<Int8>,
        refund_id -> Nullable<Int8>,
        note -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    accepted_callback_signatures (signature) {
        signature -> Bytea,
        accepted_at -> Timestamptz,
    }
}

diesel::table! {
    idempotency_keys (id) {
        id -> Int8,
        scope -> Text,
        key -> Text,
        request_hash -> Text,
        response_status -> Nullable<Int4>,
        response_body -> Nullable<Text>,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        locked_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    order_events (id) {
        id -> Int8,
        order_id -> Int8,
        kind -> Text,
        actor -> Text,
        data -> Jsonb,
        created_at -> Timestamptz,
        seq -> Int8,
    }
}

diesel::table! {
    order_items (id) {
        id -> Int8,
        order_id -> Int8,
        name -> Text,
        sku -> Nullable<Text>,
        quantity -> Int4,
        unit_price_cents -> Int8,
        total_cents -> Int8,
        metadata -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    orders (id) {
        id -> Int8,
        number -> Text,
        user_id -> Nullable<Int8>,
        status -> Int2,
        payment_status -> Int2,
        payment_intent_id -> Nullable<Text>,
        payment_reference -> Nullable<Text>,
        payment_failure_code -> Nullable<Text>,
        payment_failure_message -> Nullable<Text>,
        total_cents -> Int8,
        currency -> Bpchar,
        payment_method -> Text,
        plan_id -> Nullable<Int8>,
        plan_snapshot -> Jsonb,
        metadata -> Jsonb,
        cancel_reason -> Nullable<Text>,
        paid_at -> Nullable<Timestamptz>,
        cancelled_at -> Nullable<Timestamptz>,
        refunded_cents -> Int8,
        refund_pending_cents -> Int8,
        refunded_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        public_id -> Uuid,
        store_id -> Nullable<Uuid>,
        merchant_id -> Nullable<Uuid>,
        event_seq -> Int8,
    }
}

diesel::table! {
    payments (id) {
        id -> Int8,
        order_id -> Int8,
        status -> Int2,
        provider -> Text,
        payment_method -> Text,
        amount_cents -> Int8,
        currency -> Bpchar,
        reference -> Nullable<Text>,
        payment_intent_id -> Nullable<Text>,
        failure_code -> Nullable<Text>,
        failure_message -> Nullable<Text>,
        note -> Nullable<Text>,
        paid_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        checks -> Int4,
        next_check_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        authentication -> Nullable<Text>,
        authentication_expires_at -> Nullable<Timestamptz>,
        human_id -> Text,
        description -> Nullable<Text>,
        billing_address -> Nullable<Jsonb>,
        metadata -> Jsonb,
        active -> Bool,
        payment_date -> Nullable<Timestamptz>,
        card_brand -> Nullable<Text>,
        card_last4 -> Nullable<Text>,
        card_exp_month -> Nullable<Int2>,
        card_exp_year -> Nullable<Int2>,
        settled_at -> Nullable<Timestamptz>,
        settled_cents -> Nullable<Int8>,
    }
}

diesel::table! {
    refunds (id) {
        id -> Int8,
        order_id -> Int8,
        payment_id -> Nullable<Int8>,
        status -> Int2,
        amount_cents -> Int8,
        currency -> Bpchar,
        reason -> Nullable<Text>,
        metadata -> Jsonb,
        credit_balance -> Bool,
        provider_refund_id -> Nullable<Text>,
        refunded_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        request_key -> Nullable<Text>,
        checks -> Int4,
        next_check_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        due_back -> Bool,
        released -> Bool,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        email -> Text,
        name -> Text,
        balance_cents -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    merchants (id) {
        id -> Uuid,
        display_name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    stores (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        store_name -> Text,
        office_name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    merchant_endpoints (id) {
        id -> Int8,
        merchant_id -> Uuid,
        url -> Text,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        disabled_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    merchant_secrets (id) {
        id -> Int8,
        merchant_id -> Uuid,
        secret -> Text,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    payment_requests (order_id) {
        order_id -> Int8,
        customer_ref -> Nullable<Text>,
        customer_order_ref -> Nullable<Text>,
        description -> Nullable<Text>,
        success_url -> Nullable<Text>,
        cancel_url -> Nullable<Text>,
        callback_url -> Nullable<Text>,
        consumer_email -> Nullable<Text>,
        consumer_phone -> Nullable<Text>,
        payment_type -> Text,
        installment_term -> Nullable<Int2>,
        payment_date -> Nullable<Timestamptz>,
        announced_status -> Nullable<Text>,
        created_by -> Text,
        updated_by -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Int8,
        webhook_id -> Text,
        merchant_id -> Uuid,
        order_id -> Int8,
        order_seq -> Int8,
        event_type -> Text,
        endpoint_id -> Nullable<Int8>,
        url -> Text,
        body -> Text,
        state -> Int2,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_status -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
        given_up_at -> Nullable<Timestamptz>,
        claims -> Int8,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Int8,
        delivery_id -> Int8,
        attempt -> Int4,
        url -> Text,
        response_status -> Nullable<Int4>,
        response_excerpt -> Nullable<Text>,
        error -> Nullable<Text>,
        latency_ms -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    refund_requests (id) {
        id -> Int8,
        order_id -> Int8,
        amount_cents -> Int8,
        currency -> Bpchar,
        status -> Int2,
        requester -> Text,
        requester_role -> Text,
        request_reason -> Text,
        response_reason -> Nullable<Text>,
        refund_key -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        confirmed_at -> Nullable<Timestamptz>,
        issued_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    refund_request_transitions (id) {
        id -> Int8,
        request_id -> Int8,
        from_status -> Nullable<Int2>,
        to_status -> Int2,
        actor -> Text,
        role -> Text,
        reason -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(refund_requests -> orders (order_id));
diesel::joinable!(refund_request_transitions -> refund_requests (request_id));
diesel::joinable!(stores -> merchants (merchant_id));
diesel::joinable!(merchant_endpoints -> merchants (merchant_id));
diesel::joinable!(merchant_secrets -> merchants (merchant_id));
diesel::joinable!(payment_requests -> orders (order_id));
diesel::joinable!(orders -> stores (store_id));
diesel::joinable!(webhook_deliveries -> orders (order_id));
diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));
diesel::joinable!(api_keys -> users (user_id));
diesel::joinable!(balance_ledger -> orders (order_id));
diesel::joinable!(balance_ledger -> refunds (refund_id));
diesel::joinable!(balance_ledger -> users (user_id));
diesel::joinable!(order_events -> orders (order_id));
diesel::joinable!(order_items -> orders (order_id));
diesel::joinable!(orders -> users (user_id));
diesel::joinable!(payments -> orders (order_id));
diesel::joinable!(refunds -> orders (order_id));
diesel::joinable!(refunds -> payments (payment_id));

diesel::table! {
    payment_groups (id) {
        id -> Int8,
        user_id -> Int8,
        provider -> Text,
        amount_cents -> Int8,
        currency -> Bpchar,
        payment_intent_id -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    payment_group_members (payment_id) {
        payment_id -> Int8,
        group_id -> Int8,
        order_id -> Int8,
    }
}

diesel::table! {
    payment_captures (payment_id) {
        payment_id -> Int8,
        amount_cents -> Int8,
        holders -> Int4,
        requested_by -> Text,
        requested_at -> Timestamptz,
    }
}

diesel::joinable!(payment_group_members -> payment_groups (group_id));
diesel::joinable!(payment_captures -> payments (payment_id));

diesel::allow_tables_to_appear_in_same_query!(
    payment_groups,
    payment_group_members,
    payment_captures,
    api_keys,
    balance_ledger,
    accepted_callback_signatures,
    idempotency_keys,
    order_events,
    order_items,
    orders,
    payments,
    refunds,
    users,
    merchants,
    stores,
    merchant_endpoints,
    merchant_secrets,
    payment_requests,
    webhook_deliveries,
    webhook_attempts,
    refund_requests,
    refund_request_transitions,
);
