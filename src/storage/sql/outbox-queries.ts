import type {
  OutboxReadOperations,
  OutboxRecord,
  OutboxWriteOperations,
  StoredOutboxRecord,
} from '../../ports/storage.js';
import type { SqlExecutor } from './executor.js';

/** SQL of the outbox (both dialects); `seq` is the table's own increasing key. */
export const OQ = {
  append: `INSERT INTO outbox_events (id, workspace_id, type, customer_id, occurred_at, data)
     VALUES (?, ?, ?, ?, ?, ?)`,
  listAfter: `SELECT seq, id, workspace_id, type, customer_id, occurred_at, data FROM outbox_events
     WHERE workspace_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
} as const;

interface OutboxRow {
  seq: number | string;
  id: string;
  workspace_id: string;
  type: string;
  customer_id: string | null;
  occurred_at: number | string;
  data: string;
}

/** Reads of the outbox over one executor. */
export class OutboxReads implements OutboxReadOperations {
  constructor(protected readonly db: SqlExecutor) {}

  async listAfter(
    workspaceId: string,
    afterSeq: number,
    limit: number,
  ): Promise<readonly StoredOutboxRecord[]> {
    const rows = await this.db.all<OutboxRow>(OQ.listAfter, [workspaceId, afterSeq, limit]);
    return rows.map((r) => ({
      seq: Number(r.seq),
      id: r.id,
      workspaceId: r.workspace_id,
      type: r.type,
      customerId: r.customer_id,
      occurredAt: Number(r.occurred_at),
      data: JSON.parse(r.data) as unknown,
    }));
  }
}

/** Appends outbox facts inside the caller's transaction. */
export class OutboxWrites extends OutboxReads implements OutboxWriteOperations {
  async append(records: readonly OutboxRecord[]): Promise<void> {
    for (const r of records) {
      await this.db.run(OQ.append, [
        r.id,
        r.workspaceId,
        r.type,
        r.customerId,
        r.occurredAt,
        JSON.stringify(r.data),
      ]);
    }
  }
}
