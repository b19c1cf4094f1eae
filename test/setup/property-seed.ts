import fc from 'fast-check';

/**
 * Property tests are deterministic: every fast-check run in the suite starts from one fixed seed,
 * so CI sees the same cases every time and a failure reproduces. To explore other cases locally,
 * set BURNDOWN_TEST_SEED (any integer); a failing run prints the seed and path to replay it.
 */
const seed = Number.parseInt(process.env['BURNDOWN_TEST_SEED'] ?? '20261206', 10);
fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });
