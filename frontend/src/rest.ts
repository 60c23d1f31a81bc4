// Clients of the REST faces, typed from the OpenAPI document (openapi-typescript).
import type { components, paths } from '../generated/rest';

type Json<T> = T extends { content: { 'application/json': infer B } } ? B : never;

export type AdminOrder = components['schemas']['RestOrder'];
export type StoreOrder = components['schemas']['SeedOrder'];
export type RefundRequest = components['schemas']['SeedRefund'];

type StoreDetail = Json<paths['/api/v1/store/orders/{id}']['get']['responses'][200]>;
type AdminList = Json<paths['/api/v1/admin/orders']['get']['responses'][200]>;
type AdminError = Json<paths['/api/v1/admin/orders/{id}']['get']['responses'][404]>;

export function adminTotals(list: AdminList): number {
  return list.orders.reduce((sum: number, order: AdminOrder) => sum + order.total_cents - order.refunded_cents, 0);
}

export function storeAmount(order: StoreDetail): string {
  // Seed 001 sends major units as a number, converted by the currency's exponent.
  const amount: number = order.pay_amount;
  return `${amount} ${order.currency}`;
}

export function refundLine(request: RefundRequest): string {
  const valid: boolean = request.valid;
  return `${request.orderId}: ${request.amount} ${request.status}${valid ? '' : ' (no longer valid)'}`;
}

export function errorText(error: AdminError): string {
  return `${error.code}: ${error.message}`;
}

/** The headers each face authenticates with, as the document's security schemes say. */
export const adminHeaders = (key: string): Record<string, string> => ({ Authorization: `Bearer ${key}` });
export const storeHeaders = (key: string): Record<string, string> => ({ Authorization: key });
