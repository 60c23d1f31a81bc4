// Keeping an order screen live: apply updates in sequence order and remember where to
// resume (the last `seq` seen) across reconnects.
import type { OrderLiveSubscription, OrdersLiveSubscription } from '../generated/graphql';

export interface LiveState {
  lastSeq: number;
  status: string | null;
  refundedCents: number;
}

export function applyUpdate(state: LiveState, data: OrderLiveSubscription): LiveState {
  const update = data.orderUpdated;
  if (update.seq <= state.lastSeq) {
    return state; // already applied (cannot happen when resuming with afterSeq)
  }
  const order = update.order;
  return {
    lastSeq: update.seq,
    status: order ? order.status : state.status,
    refundedCents: order ? order.refundedCents : state.refundedCents,
  };
}

export function resumeVariables(orderId: string, state: LiveState): { orderId: string; afterSeq: number } {
  return { orderId, afterSeq: state.lastSeq };
}

export function listCursor(data: OrdersLiveSubscription): string {
  return data.ordersUpdated.cursor;
}
