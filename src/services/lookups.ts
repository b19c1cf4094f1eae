import { notFound } from '../domain/errors.js';
import type { Customer, ReadOperations } from '../ports/storage.js';
import { DEFAULT_CREDIT_TYPE } from './context.js';

/** Loads a customer of the workspace or refuses with 404 (another workspace's customer is a 404 too). */
export async function requireCustomer(
  reads: ReadOperations,
  workspaceId: string,
  customerId: string,
): Promise<Customer> {
  const customer = await reads.getCustomer(workspaceId, customerId);
  if (!customer) throw notFound('customer', customerId);
  return customer;
}

/** Refuses with 404 unless the credit type exists (`credits` always does). */
export async function requireCreditType(
  reads: ReadOperations,
  workspaceId: string,
  creditType: string,
): Promise<void> {
  if (creditType === DEFAULT_CREDIT_TYPE) return;
  if (!(await reads.getCreditType(workspaceId, creditType))) throw notFound('credit type', creditType);
}
