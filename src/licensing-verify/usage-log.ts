import {
  arrayBuffer,
  base64url,
  canonicalJson,
  fromBase64url,
  sha256Hex,
  subtle,
  utf8,
  verifyEd25519,
  type WebCryptoKey,
  type WebCryptoKeyPair,
} from './encoding.js';

/**
 * The offline usage log (docs/design.md "Licensing"): append only, hash chained and signed by the
 * machine's Ed25519 key. Each record's `hash` is the SHA-256 of the canonical JSON of its content
 * (license, machine, sequence number, time, event type, quantity and the previous record's hash),
 * and its `signature` signs that hash. The server accepts a log record by record: a replayed
 * record changes nothing; a gap, a fork or a bad signature stops the upload there.
 */
export interface UsageRecord {
  /** 1, 2, 3, … per machine, with no gap. */
  readonly seq: number;
  /** When the usage happened, RFC 3339 UTC. */
  readonly time: string;
  /** The usage event type (what the server's meters read). */
  readonly event_type: string;
  /** How much was used, a decimal string (the event's `quantity`). */
  readonly quantity: string;
  /** The previous record's `hash` ({@link GENESIS_HASH} for the first). */
  readonly prev_hash: string;
  /** SHA-256 (hex) of the canonical record content. */
  readonly hash: string;
  /** base64url Ed25519 signature of `hash` (its UTF-8 text) by the machine's key. */
  readonly signature: string;
}

/** The `prev_hash` of a machine's first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** What the hash of a record covers. */
export interface RecordContent {
  readonly license_id: string;
  readonly machine_id: string;
  readonly seq: number;
  readonly time: string;
  readonly event_type: string;
  readonly quantity: string;
  readonly prev_hash: string;
}

/** The hash of a record's content. */
export function hashRecord(content: RecordContent): Promise<string> {
  return sha256Hex(utf8(canonicalJson(content)));
}

/** Why a record is refused (each an API error code of `POST /v1/licenses/{id}/usage-receipts`). */
export type RecordProblem = 'usage_log_fork' | 'usage_log_bad_signature' | 'usage_log_bad_hash';

/**
 * Checks one record against the machine's chain head: its `prev_hash` must be `prevHash` (else a
 * fork), its `hash` its content's hash, and its signature the machine's.
 */
export async function checkRecord(
  record: UsageRecord,
  expected: { readonly licenseId: string; readonly machineId: string; readonly prevHash: string },
  machineKey: WebCryptoKey,
): Promise<RecordProblem | null> {
  if (record.prev_hash !== expected.prevHash) return 'usage_log_fork';
  const hash = await hashRecord({
    license_id: expected.licenseId,
    machine_id: expected.machineId,
    seq: record.seq,
    time: record.time,
    event_type: record.event_type,
    quantity: record.quantity,
    prev_hash: record.prev_hash,
  });
  if (hash !== record.hash) return 'usage_log_bad_hash';
  const signature = fromBase64url(record.signature);
  if (signature === null || signature.length !== 64) return 'usage_log_bad_signature';
  return (await verifyEd25519(machineKey, signature, utf8(record.hash))) ? null : 'usage_log_bad_signature';
}

/**
 * The machine's side: appends signed records to a log kept by the application (persist
 * `records` after each append; the chain continues from the last one).
 */
export class UsageLog {
  private readonly list: UsageRecord[];

  constructor(
    private readonly ids: { readonly licenseId: string; readonly machineId: string },
    private readonly privateKey: WebCryptoKey,
    records: readonly UsageRecord[] = [],
  ) {
    this.list = [...records];
  }

  /** Every record so far, oldest first. */
  get records(): readonly UsageRecord[] {
    return this.list;
  }

  /** Records one use: hashes it onto the chain and signs it. */
  async append(input: { eventType: string; quantity: string; time: Date }): Promise<UsageRecord> {
    const last = this.list[this.list.length - 1];
    const content: RecordContent = {
      license_id: this.ids.licenseId,
      machine_id: this.ids.machineId,
      seq: (last?.seq ?? 0) + 1,
      time: input.time.toISOString(),
      event_type: input.eventType,
      quantity: input.quantity,
      prev_hash: last?.hash ?? GENESIS_HASH,
    };
    const hash = await hashRecord(content);
    const signature = new Uint8Array(
      await subtle().sign({ name: 'Ed25519' }, this.privateKey, arrayBuffer(utf8(hash))),
    );
    const record: UsageRecord = {
      seq: content.seq,
      time: content.time,
      event_type: content.event_type,
      quantity: content.quantity,
      prev_hash: content.prev_hash,
      hash,
      signature: base64url(signature),
    };
    this.list.push(record);
    return record;
  }
}

/** A new Ed25519 key pair for a machine, and its public key as the server wants it (JWK `x`). */
export async function generateMachineKey(): Promise<{ keyPair: WebCryptoKeyPair; publicKey: string }> {
  const keyPair = (await subtle().generateKey({ name: 'Ed25519' }, true, [
    'sign',
    'verify',
  ])) as WebCryptoKeyPair;
  const jwk = await subtle().exportKey('jwk', keyPair.publicKey);
  return { keyPair, publicKey: jwk.x ?? '' };
}
