/**
 * Offline license verification and the signed usage log, for licensed applications: no runtime
 * dependency beyond WebCrypto (`crypto.subtle`, Ed25519), so the compiled module
 * (`dist/licensing-verify/index.js`) runs in Node ≥ 20 and in browsers alike.
 */
export { canonicalJson, importEd25519PublicKey } from './encoding.js';
export {
  type FileCreditLease,
  type FileEntitlement,
  type Jwks,
  LICENSE_FILE_TYPE,
  LICENSE_FILE_VERSION,
  type LicenseFileError,
  type LicenseFilePayload,
  type LicenseFileVerdict,
  type PublicJwk,
  VERIFY_EXIT_CODES,
  type VerifyOptions,
  verifyLicenseFile,
} from './license-file.js';
export {
  checkRecord,
  GENESIS_HASH,
  generateMachineKey,
  hashRecord,
  type RecordContent,
  type RecordProblem,
  UsageLog,
  type UsageRecord,
} from './usage-log.js';
