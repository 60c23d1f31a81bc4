// Frontend code written against the generated types. It compiles under `tsc --strict` only
// while the contract holds: a renamed field, a money amount that stops being a number, or a
// nullable that becomes non-null (or back) fails the suite.
import type {
  OrderDetailQuery,
  OrderFeedQuery,
  OrderListQuery,
  OrderRowFragment,
  OrderStatus,
  RefundOrderMutationVariables,
  RequestRefundMutationVariables,
} from '../generated/graphql';

/** `1234` USD minor units → `"12.34 USD"`; the exponent comes from the currency. */
export function formatMoney(minor: number, currency: string): string {
  const exponent = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions()
    .maximumFractionDigits ?? 2;
  return `${(minor / 10 ** exponent).toFixed(exponent)} ${currency}`;
}

export function rowLabel(row: OrderRowFragment): string {
  const buyer = row.user?.email ?? 'no buyer yet';
  const refunded = row.refundedCents > 0 ? `, refunded ${formatMoney(row.refundedCents, row.currency)}` : '';
  return `${row.number} (${row.status}) ${formatMoney(row.totalCents, row.currency)}${refunded}, ${buyer}`;
}

export function listLabels(data: OrderListQuery): string[] {
  const { totalCount, hasNextPage } = data.orders.pageInfo;
  const labels = data.orders.nodes.map(rowLabel);
  return hasNextPage ? [...labels, `… of ${totalCount}`] : labels;
}

const terminal: readonly OrderStatus[] = ['CANCELLED', 'COMPLETED', 'REFUNDED'];

export function canCancel(order: NonNullable<OrderDetailQuery['order']>): boolean {
  return !terminal.includes(order.status) && order.paymentStatus === 'UNPAID';
}

export function refundable(order: NonNullable<OrderDetailQuery['order']>): number {
  const lines: number = order.items.reduce((sum, item) => sum + item.totalCents, 0);
  return Math.min(lines, order.totalCents) - order.refundedCents - order.refundPendingCents;
}

export function lastEventAt(order: NonNullable<OrderDetailQuery['order']>): Date | null {
  const last = order.events.at(-1);
  return last ? new Date(last.createdAt) : null;
}

export function fullRefund(order: NonNullable<OrderDetailQuery['order']>): RefundOrderMutationVariables {
  return { input: { id: order.id, amountCents: refundable(order), reason: 'customer asked' } };
}

export function askRefund(orderId: string, amountCents: number): RequestRefundMutationVariables {
  return { input: { orderId, amountCents, reason: 'arrived broken' } };
}

/** Appends a page of the feed; the next request passes `endCursor` as `after`. */
export function appendFeed(
  rows: OrderRowFragment[],
  data: OrderFeedQuery,
): { rows: OrderRowFragment[]; after: string | null; done: boolean } {
  const seen = new Set(rows.map((r) => r.id));
  const fresh = data.orders.edges.map((e) => e.node).filter((n) => !seen.has(n.id));
  return { rows: [...rows, ...fresh], after: data.orders.pageInfo.endCursor, done: !data.orders.pageInfo.hasNextPage };
}
