import { BurndownError, ErrorCode, notFound } from '../domain/errors.js';
import type { Instant } from '../domain/time/instant.js';
import type { CreditType, Customer, WriteOperations } from '../ports/storage.js';
import { DEFAULT_CREDIT_TYPE } from './context.js';

/** Creates a customer; an existing id is a 409 `already_exists` (never an overwrite). */
export async function createCustomer(
  tx: WriteOperations,
  input: {
    workspaceId: string;
    id: string;
    name: string | null;
    metadata: Record<string, unknown>;
    now: Instant;
  },
): Promise<Customer> {
  const customer: Customer = {
    workspaceId: input.workspaceId,
    id: input.id,
    name: input.name,
    metadata: input.metadata,
    createdAt: input.now,
  };
  if (!(await tx.insertCustomer(customer))) {
    throw new BurndownError(ErrorCode.alreadyExists, `customer "${input.id}" already exists`, {
      id: input.id,
    });
  }
  return customer;
}

/**
 * Changes a customer's name and/or metadata. A field left out keeps its value; `name: null`
 * clears the name; `metadata` replaces the stored metadata whole (so the result always meets the
 * limits create enforces, and sending the same body twice is the same as sending it once).
 */
export async function updateCustomer(
  tx: WriteOperations,
  input: {
    workspaceId: string;
    id: string;
    name?: string | null;
    metadata?: Record<string, unknown>;
  },
): Promise<Customer> {
  const existing = await tx.loadCustomerForUpdate(input.workspaceId, input.id);
  if (!existing) throw notFound('customer', input.id);
  const customer: Customer = {
    ...existing,
    name: input.name === undefined ? existing.name : input.name,
    metadata: input.metadata === undefined ? existing.metadata : input.metadata,
  };
  await tx.updateCustomer(customer);
  return customer;
}

/** Creates a credit type; `credits` and existing ids are a 409 `already_exists`. */
export async function createCreditType(
  tx: WriteOperations,
  input: { workspaceId: string; id: string; name: string | null; now: Instant },
): Promise<CreditType> {
  const creditType: CreditType = {
    workspaceId: input.workspaceId,
    id: input.id,
    name: input.name,
    createdAt: input.now,
  };
  if (input.id === DEFAULT_CREDIT_TYPE || !(await tx.insertCreditType(creditType))) {
    throw new BurndownError(ErrorCode.alreadyExists, `credit type "${input.id}" already exists`, {
      id: input.id,
    });
  }
  return creditType;
}
