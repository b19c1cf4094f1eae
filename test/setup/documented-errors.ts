/**
 * After every test file: each error answer its in-process apps gave (test/fixtures/harness.ts
 * records them) must be in the OpenAPI enum of `error.code` of its operation and status. So every
 * suite that provokes errors also checks the published contract; a new code or a new refusal on a
 * route cannot ship without the document naming it (src/http/openapi.ts, ROUTE_ERRORS).
 */
import { afterAll, expect } from 'vitest';

afterAll(async () => {
  const observed = (globalThis as { __burndownObservedErrors?: unknown[] }).__burndownObservedErrors;
  if (!observed || observed.length === 0) return;
  const { undocumentedErrors } = await import('../fixtures/documented-errors.js');
  const { createTestApp, observedErrors } = await import('../fixtures/harness.js');
  const t = await createTestApp();
  try {
    const doc = t.app.swagger() as unknown as Record<string, unknown>;
    expect(
      undocumentedErrors(doc, observedErrors),
      'errors answered but not in the OpenAPI document',
    ).toEqual([]);
  } finally {
    await t.close();
  }
});
