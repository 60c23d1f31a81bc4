DROP TABLE refund_request_transitions;
DROP TABLE refund_requests;
