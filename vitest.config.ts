import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'clients/typescript/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // maxWorkers stays Vitest's default (cores - 1: one worker on the 2-core CI machine). Measured:
    // three PostgreSQL-backed HTTP files took 65 s with one worker and 94 s with two (CPU-bound).
    // Starts an embedded PostgreSQL when BURNDOWN_TEST_POSTGRES_URL is unset: PostgreSQL tests never skip.
    globalSetup: ['test/setup/postgres-global.ts'],
    // Every error a test provoked through the harness is in the OpenAPI document (test/setup/documented-errors.ts).
    // Every property test starts from one fixed seed (test/setup/property-seed.ts).
    setupFiles: ['test/setup/documented-errors.ts', 'test/setup/property-seed.ts'],
  },
});
