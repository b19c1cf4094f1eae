import { Amount } from '../../domain/amount/amount.js';
import type { Entitlement } from '../../domain/catalog/catalog.js';
import type { CreditLease, FloatingSeat, License, Machine } from '../../domain/licensing/license.js';
import type { Instant } from '../../domain/time/instant.js';
import type { Period } from '../../domain/time/periods.js';
import type {
  LicensingReadOperations,
  LicensingWriteOperations,
  Page,
  PageRequest,
  SigningKeyRecord,
  StoredUsageRecord,
} from '../../ports/storage.js';
import type { SqlExecutor } from './executor.js';
import { afterId, idKey, pageOf } from './paging.js';

/** SQL of the licensing aggregate (both dialects; docs/design.md "Licensing"). */
export const LQ = {
  getLicense: 'SELECT * FROM licenses WHERE workspace_id = ? AND id = ?',
  licenseByKey: 'SELECT * FROM licenses WHERE key_hash = ?',
  listLicenses: 'SELECT * FROM licenses WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?',
  listLicensesOf:
    'SELECT * FROM licenses WHERE workspace_id = ? AND customer_id = ? AND id > ? ORDER BY id LIMIT ?',
  insertLicense: `INSERT INTO licenses (workspace_id, id, customer_id, name, plan_id, entitlements, key_hash,
     key_prefix, machine_limit, floating_limit, floating_ttl_ms, heartbeat_window_ms, starts_at, expires_at, status, metadata,
     created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  updateLicense: `UPDATE licenses SET name = ?, plan_id = ?, entitlements = ?, machine_limit = ?, floating_limit = ?,
     floating_ttl_ms = ?, heartbeat_window_ms = ?, starts_at = ?, expires_at = ?, status = ?, metadata = ?, updated_at = ?
     WHERE workspace_id = ? AND id = ?`,
  listMachines: `SELECT * FROM license_machines WHERE workspace_id = ? AND license_id = ?
     ORDER BY CASE WHEN status = 'active' THEN 0 ELSE 1 END, activated_at, id`,
  activeMachine: `SELECT * FROM license_machines WHERE workspace_id = ? AND license_id = ? AND fingerprint = ?
     AND status = 'active'`,
  insertMachine: `INSERT INTO license_machines (workspace_id, id, license_id, fingerprint, public_key, name, status,
     activated_at, last_seen_at, ended_at, last_seq, last_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  updateMachine: `UPDATE license_machines SET name = ?, status = ?, last_seen_at = ?, ended_at = ?, last_seq = ?,
     last_hash = ? WHERE workspace_id = ? AND id = ?`,
  openSeats: 'SELECT * FROM license_seats WHERE workspace_id = ? AND license_id = ? AND released_at IS NULL',
  insertSeat: `INSERT INTO license_seats (workspace_id, id, license_id, machine_id, created_at, expires_at,
     released_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
  updateSeat: 'UPDATE license_seats SET expires_at = ?, released_at = ? WHERE workspace_id = ? AND id = ?',
  openLease:
    'SELECT * FROM license_credit_leases WHERE workspace_id = ? AND machine_id = ? AND ended_at IS NULL',
  insertLease: `INSERT INTO license_credit_leases (workspace_id, id, license_id, machine_id, credit_type, amount,
     hold_id, expires_at, created_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  updateLease: `UPDATE license_credit_leases SET amount = ?, hold_id = ?, expires_at = ?, ended_at = ?
     WHERE workspace_id = ? AND id = ?`,
  getRecord: 'SELECT * FROM license_usage_records WHERE workspace_id = ? AND machine_id = ? AND seq = ?',
  insertRecord: `INSERT INTO license_usage_records (workspace_id, machine_id, seq, license_id, hash, event_key,
     record, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  listKeys: 'SELECT * FROM licensing_keys ORDER BY created_at, kid',
  insertKey: `INSERT INTO licensing_keys (kid, public_x, private_key, encrypted, created_at, retired_at)
     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  retireKeys: 'UPDATE licensing_keys SET retired_at = ? WHERE kid <> ? AND retired_at IS NULL',
  silent: `SELECT DISTINCT m.workspace_id, l.customer_id, m.license_id FROM license_machines m
     JOIN licenses l ON l.workspace_id = m.workspace_id AND l.id = m.license_id
     WHERE m.status = 'active' AND m.last_seen_at + l.heartbeat_window_ms < ? LIMIT ?`,
} as const;

type Row = Record<string, unknown>;
const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const textOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** Entitlements as stored: the API's wire form (amounts as decimal strings). */
export function entitlementsToJson(entitlements: readonly Entitlement[]): string {
  return JSON.stringify(
    entitlements.map((e) => ({
      feature_id: e.featureId,
      usage_limit: e.usageLimit
        ? { amount: e.usageLimit.amount.toString(), period: e.usageLimit.period }
        : null,
      config: e.config,
      overage: e.overage ? { max: e.overage.max?.toString() ?? null } : null,
    })),
  );
}

function entitlementsFromJson(text: string): Entitlement[] {
  const list = JSON.parse(text) as Row[];
  return list.map((e) => {
    const limit = e['usage_limit'] as Row | null;
    const overage = e['overage'] as Row | null;
    return {
      featureId: String(e['feature_id']),
      usageLimit: limit
        ? { amount: Amount.parse(String(limit['amount'])), period: limit['period'] as Period }
        : null,
      config: (e['config'] as Record<string, unknown> | null) ?? null,
      overage: overage
        ? {
            max:
              overage['max'] === null || overage['max'] === undefined
                ? null
                : Amount.parse(String(overage['max'])),
          }
        : null,
    };
  });
}

function licenseFromRow(r: Row): License {
  return {
    workspaceId: String(r['workspace_id']),
    id: String(r['id']),
    customerId: String(r['customer_id']),
    name: textOrNull(r['name']),
    planId: textOrNull(r['plan_id']),
    entitlements: entitlementsFromJson(String(r['entitlements'])),
    keyHash: String(r['key_hash']),
    keyPrefix: String(r['key_prefix']),
    machineLimit: num(r['machine_limit']),
    floatingLimit: numOrNull(r['floating_limit']),
    floatingTtlMs: num(r['floating_ttl_ms']),
    heartbeatWindowMs: num(r['heartbeat_window_ms']),
    startsAt: num(r['starts_at']),
    expiresAt: numOrNull(r['expires_at']),
    status: String(r['status']) as License['status'],
    metadata: JSON.parse(String(r['metadata'])) as Record<string, unknown>,
    createdAt: num(r['created_at']),
    updatedAt: num(r['updated_at']),
  };
}

function machineFromRow(r: Row): Machine {
  return {
    workspaceId: String(r['workspace_id']),
    id: String(r['id']),
    licenseId: String(r['license_id']),
    fingerprint: String(r['fingerprint']),
    publicKey: String(r['public_key']),
    name: textOrNull(r['name']),
    status: String(r['status']) as Machine['status'],
    activatedAt: num(r['activated_at']),
    lastSeenAt: num(r['last_seen_at']),
    endedAt: numOrNull(r['ended_at']),
    lastSeq: num(r['last_seq']),
    lastHash: String(r['last_hash']),
  };
}

function seatFromRow(r: Row): FloatingSeat {
  return {
    workspaceId: String(r['workspace_id']),
    id: String(r['id']),
    licenseId: String(r['license_id']),
    machineId: String(r['machine_id']),
    createdAt: num(r['created_at']),
    expiresAt: num(r['expires_at']),
    releasedAt: numOrNull(r['released_at']),
  };
}

function leaseFromRow(r: Row): CreditLease {
  return {
    workspaceId: String(r['workspace_id']),
    id: String(r['id']),
    licenseId: String(r['license_id']),
    machineId: String(r['machine_id']),
    creditType: String(r['credit_type']),
    amount: String(r['amount']),
    holdId: textOrNull(r['hold_id']),
    expiresAt: num(r['expires_at']),
    createdAt: num(r['created_at']),
    endedAt: numOrNull(r['ended_at']),
  };
}

function recordFromRow(r: Row): StoredUsageRecord {
  return {
    workspaceId: String(r['workspace_id']),
    licenseId: String(r['license_id']),
    machineId: String(r['machine_id']),
    seq: num(r['seq']),
    hash: String(r['hash']),
    eventKey: String(r['event_key']),
    record: JSON.parse(String(r['record'])) as unknown,
    receivedAt: num(r['received_at']),
  };
}

function keyFromRow(r: Row): SigningKeyRecord {
  return {
    kid: String(r['kid']),
    publicX: String(r['public_x']),
    privateKey: String(r['private_key']),
    encrypted: num(r['encrypted']) === 1,
    createdAt: num(r['created_at']),
    retiredAt: numOrNull(r['retired_at']),
  };
}

/** Reads of the licensing aggregate over one executor. */
export class LicensingReads implements LicensingReadOperations {
  constructor(protected readonly db: SqlExecutor) {}

  async getLicense(workspaceId: string, id: string): Promise<License | null> {
    const row = await this.db.get<Row>(LQ.getLicense, [workspaceId, id]);
    return row ? licenseFromRow(row) : null;
  }

  async findLicenseByKeyHash(keyHash: string): Promise<License | null> {
    const row = await this.db.get<Row>(LQ.licenseByKey, [keyHash]);
    return row ? licenseFromRow(row) : null;
  }

  async listLicenses(
    workspaceId: string,
    customerId: string | null,
    req: PageRequest,
  ): Promise<Page<License>> {
    const after = afterId(req);
    const rows =
      customerId === null
        ? await this.db.all<Row>(LQ.listLicenses, [workspaceId, after, req.limit + 1])
        : await this.db.all<Row>(LQ.listLicensesOf, [workspaceId, customerId, after, req.limit + 1]);
    return pageOf(rows.map(licenseFromRow), req.limit, idKey);
  }

  async listMachines(workspaceId: string, licenseId: string): Promise<readonly Machine[]> {
    return (await this.db.all<Row>(LQ.listMachines, [workspaceId, licenseId])).map(machineFromRow);
  }

  async findActiveMachine(
    workspaceId: string,
    licenseId: string,
    fingerprint: string,
  ): Promise<Machine | null> {
    const row = await this.db.get<Row>(LQ.activeMachine, [workspaceId, licenseId, fingerprint]);
    return row ? machineFromRow(row) : null;
  }

  async listOpenSeats(workspaceId: string, licenseId: string): Promise<readonly FloatingSeat[]> {
    return (await this.db.all<Row>(LQ.openSeats, [workspaceId, licenseId])).map(seatFromRow);
  }

  async findOpenCreditLease(workspaceId: string, machineId: string): Promise<CreditLease | null> {
    const row = await this.db.get<Row>(LQ.openLease, [workspaceId, machineId]);
    return row ? leaseFromRow(row) : null;
  }

  async getUsageRecord(
    workspaceId: string,
    machineId: string,
    seq: number,
  ): Promise<StoredUsageRecord | null> {
    const row = await this.db.get<Row>(LQ.getRecord, [workspaceId, machineId, seq]);
    return row ? recordFromRow(row) : null;
  }

  async listSigningKeys(): Promise<readonly SigningKeyRecord[]> {
    return (await this.db.all<Row>(LQ.listKeys, [])).map(keyFromRow);
  }

  async findLicensesWithSilentMachines(
    now: Instant,
    limit: number,
  ): Promise<readonly { workspaceId: string; customerId: string; licenseId: string }[]> {
    const rows = await this.db.all<Row>(LQ.silent, [now, limit]);
    return rows.map((r) => ({
      workspaceId: String(r['workspace_id']),
      customerId: String(r['customer_id']),
      licenseId: String(r['license_id']),
    }));
  }
}

/** Writes of the licensing aggregate inside the caller's transaction. */
export class LicensingWrites extends LicensingReads implements LicensingWriteOperations {
  async insertLicense(l: License): Promise<boolean> {
    const changed = await this.db.run(LQ.insertLicense, [
      l.workspaceId,
      l.id,
      l.customerId,
      l.name,
      l.planId,
      entitlementsToJson(l.entitlements),
      l.keyHash,
      l.keyPrefix,
      l.machineLimit,
      l.floatingLimit,
      l.floatingTtlMs,
      l.heartbeatWindowMs,
      l.startsAt,
      l.expiresAt,
      l.status,
      JSON.stringify(l.metadata),
      l.createdAt,
      l.updatedAt,
    ]);
    return changed > 0;
  }

  async updateLicense(l: License): Promise<void> {
    await this.db.run(LQ.updateLicense, [
      l.name,
      l.planId,
      entitlementsToJson(l.entitlements),
      l.machineLimit,
      l.floatingLimit,
      l.floatingTtlMs,
      l.heartbeatWindowMs,
      l.startsAt,
      l.expiresAt,
      l.status,
      JSON.stringify(l.metadata),
      l.updatedAt,
      l.workspaceId,
      l.id,
    ]);
  }

  async insertMachine(m: Machine): Promise<void> {
    await this.db.run(LQ.insertMachine, [
      m.workspaceId,
      m.id,
      m.licenseId,
      m.fingerprint,
      m.publicKey,
      m.name,
      m.status,
      m.activatedAt,
      m.lastSeenAt,
      m.endedAt,
      m.lastSeq,
      m.lastHash,
    ]);
  }

  async updateMachine(m: Machine): Promise<void> {
    await this.db.run(LQ.updateMachine, [
      m.name,
      m.status,
      m.lastSeenAt,
      m.endedAt,
      m.lastSeq,
      m.lastHash,
      m.workspaceId,
      m.id,
    ]);
  }

  async insertSeat(s: FloatingSeat): Promise<void> {
    await this.db.run(LQ.insertSeat, [
      s.workspaceId,
      s.id,
      s.licenseId,
      s.machineId,
      s.createdAt,
      s.expiresAt,
      s.releasedAt,
    ]);
  }

  async updateSeat(s: FloatingSeat): Promise<void> {
    await this.db.run(LQ.updateSeat, [s.expiresAt, s.releasedAt, s.workspaceId, s.id]);
  }

  async insertCreditLease(l: CreditLease): Promise<void> {
    await this.db.run(LQ.insertLease, [
      l.workspaceId,
      l.id,
      l.licenseId,
      l.machineId,
      l.creditType,
      l.amount,
      l.holdId,
      l.expiresAt,
      l.createdAt,
      l.endedAt,
    ]);
  }

  async updateCreditLease(l: CreditLease): Promise<void> {
    await this.db.run(LQ.updateLease, [l.amount, l.holdId, l.expiresAt, l.endedAt, l.workspaceId, l.id]);
  }

  async insertUsageRecord(r: StoredUsageRecord): Promise<boolean> {
    const changed = await this.db.run(LQ.insertRecord, [
      r.workspaceId,
      r.machineId,
      r.seq,
      r.licenseId,
      r.hash,
      r.eventKey,
      JSON.stringify(r.record),
      r.receivedAt,
    ]);
    return changed > 0;
  }

  async insertSigningKey(k: SigningKeyRecord): Promise<boolean> {
    const changed = await this.db.run(LQ.insertKey, [
      k.kid,
      k.publicX,
      k.privateKey,
      k.encrypted ? 1 : 0,
      k.createdAt,
      k.retiredAt,
    ]);
    return changed > 0;
  }

  async retireSigningKeysExcept(kid: string, at: Instant): Promise<void> {
    await this.db.run(LQ.retireKeys, [at, kid]);
  }
}
