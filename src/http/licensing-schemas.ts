import { Type } from '@sinclair/typebox';
import { PERIODS } from '../domain/time/periods.js';
import { AmountText, Id, Metadata, Nullable, OpaqueId, Time } from './schemas.js';

/** Request and answer schemas of the licensing routes (docs/api.md "Licensing"). */

const PeriodText = Type.Union(
  PERIODS.map((p) => Type.Literal(p)),
  { description: 'ISO 8601 period: P1D, P1W, P1M or P1Y' },
);

const EntitlementInput = Type.Object(
  {
    feature_id: Id,
    usage_limit: Type.Optional(
      Nullable(Type.Object({ amount: AmountText, period: PeriodText }, { additionalProperties: false })),
    ),
    config: Type.Optional(Nullable(Type.Record(Type.String({ maxLength: 128 }), Type.Unknown()))),
    overage: Type.Optional(
      Nullable(Type.Object({ max: Type.Optional(Nullable(AmountText)) }, { additionalProperties: false })),
    ),
  },
  { additionalProperties: false },
);

const EntitlementOutput = Type.Object({
  feature_id: Type.String(),
  usage_limit: Nullable(Type.Object({ amount: Type.String(), period: Type.String() })),
  config: Nullable(Type.Record(Type.String(), Type.Unknown())),
  overage: Nullable(Type.Object({ max: Nullable(Type.String()) })),
});

const Seconds = (description: string, max: number) => Type.Integer({ minimum: 1, maximum: max, description });

export const CreateLicenseBody = Type.Object(
  {
    id: Type.Optional(Id),
    customer_id: Id,
    name: Type.Optional(Nullable(Type.String({ maxLength: 256 }))),
    plan_id: Type.Optional(Nullable(Id)),
    entitlements: Type.Optional(Type.Array(EntitlementInput, { maxItems: 200 })),
    machine_limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'Default 1' })),
    floating_limit: Type.Optional(
      Nullable(Type.Integer({ minimum: 1, maximum: 100_000, description: 'Floating seats; null: none' })),
    ),
    floating_ttl_seconds: Type.Optional(
      Seconds('Life of a floating seat unless renewed (default 900)', 86_400),
    ),
    heartbeat_window_seconds: Type.Optional(
      Seconds('A machine silent longer loses its seat (default 7 days)', 366 * 86_400),
    ),
    starts_at: Type.Optional(Nullable(Time)),
    expires_at: Type.Optional(Nullable(Time)),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

export const UpdateLicenseBody = Type.Object(
  {
    name: Type.Optional(Nullable(Type.String({ maxLength: 256 }))),
    machine_limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    floating_limit: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 100_000 }))),
    heartbeat_window_seconds: Type.Optional(Seconds('Heartbeat window', 366 * 86_400)),
    expires_at: Type.Optional(Nullable(Time)),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

export const LicenseBody = Type.Object(
  {
    id: Type.String(),
    customer_id: Type.String(),
    name: Nullable(Type.String()),
    plan_id: Nullable(Type.String()),
    entitlements: Type.Array(EntitlementOutput),
    key_prefix: Type.String({ description: 'The first group of the key (the key itself is shown once)' }),
    machine_limit: Type.Integer(),
    floating_limit: Nullable(Type.Integer()),
    floating_ttl_seconds: Type.Integer(),
    heartbeat_window_seconds: Type.Integer(),
    starts_at: Time,
    expires_at: Nullable(Time),
    status: Type.Union(['active', 'suspended', 'revoked', 'expired'].map((s) => Type.Literal(s))),
    metadata: Type.Record(Type.String(), Type.Unknown()),
    created_at: Time,
    updated_at: Time,
  },
  {},
);

export const CreatedLicenseBody = Type.Composite([
  Type.Omit(LicenseBody, []),
  Type.Object({ key: Type.String({ description: 'The license key, shown only in this answer' }) }),
]);

export const MachineBody = Type.Object(
  {
    id: Type.String(),
    license_id: Type.String(),
    fingerprint: Type.String(),
    public_key: Type.String(),
    name: Nullable(Type.String()),
    status: Type.Union(['active', 'deactivated', 'culled'].map((s) => Type.Literal(s))),
    activated_at: Time,
    last_seen_at: Time,
    ended_at: Nullable(Time),
    last_seq: Type.Integer(),
  },
  {},
);

/** A license's machines. */
export const MachineListBody = Type.Object({ data: Type.Array(MachineBody) });

/** Whether a floating seat was released. */
export const ReleasedSeatBody = Type.Object({ released: Type.Boolean() });

const Fingerprint = Type.String({ minLength: 1, maxLength: 256, description: 'The machine fingerprint' });

export const ActivateBody = Type.Object(
  {
    fingerprint: Fingerprint,
    public_key: Type.String({
      minLength: 43,
      maxLength: 44,
      description: "The machine's Ed25519 public key: base64url of its 32 bytes (JWK x)",
    }),
    name: Type.Optional(Nullable(Type.String({ maxLength: 256 }))),
  },
  { additionalProperties: false },
);

export const FingerprintBody = Type.Object({ fingerprint: Fingerprint }, { additionalProperties: false });

export const CheckInBody = Type.Object(
  {
    fingerprint: Fingerprint,
    floating: Type.Optional(Type.Boolean({ description: 'Take or renew a floating seat' })),
    credits: Type.Optional(
      Type.Object(
        {
          amount: AmountText,
          credit_type: Type.Optional(Id),
          ttl_seconds: Type.Optional(
            Seconds('Life of the lease (default and most: the file TTL)', 366 * 86_400),
          ),
        },
        { additionalProperties: false, description: 'Lease credits for offline use (a hold)' },
      ),
    ),
  },
  { additionalProperties: false },
);

const CreditLeaseBody = Type.Object({
  id: Type.String(),
  credit_type: Type.String(),
  amount: Type.String(),
  hold_id: Nullable(Type.String()),
  expires_at: Time,
});

export const CheckInAnswer = Type.Object(
  {
    license: LicenseBody,
    machine: MachineBody,
    seat: Nullable(Type.Object({ id: Type.String(), expires_at: Time })),
    credit_lease: Nullable(CreditLeaseBody),
    license_file: Type.String({ description: 'Compact JWS (EdDSA) of the license file' }),
    license_file_expires_at: Time,
  },
  {},
);

const UsageRecordBody = Type.Object(
  {
    seq: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    time: Time,
    event_type: Type.String({ minLength: 1, maxLength: 256 }),
    quantity: AmountText,
    prev_hash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    hash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    signature: Type.String({ maxLength: 128 }),
  },
  { additionalProperties: false },
);

export const UsageReceiptsBody = Type.Object(
  { fingerprint: Fingerprint, records: Type.Array(UsageRecordBody, { maxItems: 10_000 }) },
  { additionalProperties: false },
);

export const UsageReceiptsAnswer = Type.Object({
  accepted: Type.Integer(),
  duplicates: Type.Integer(),
  last_seq: Type.Integer(),
  credit_lease: Nullable(CreditLeaseBody),
});

export const LicenseIdParams = Type.Object({ id: Id });
export const MachineParams = Type.Object({ id: Id, machine_id: OpaqueId });
export const LicenseListQuery = Type.Object(
  {
    customer_id: Type.Optional(Id),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
    cursor: Type.Optional(Type.String({ maxLength: 2048 })),
  },
  { additionalProperties: false },
);

export const JwksBody = Type.Object(
  {
    keys: Type.Array(
      Type.Object({
        kty: Type.Literal('OKP'),
        crv: Type.Literal('Ed25519'),
        x: Type.String(),
        kid: Type.String(),
        alg: Type.Literal('EdDSA'),
        use: Type.Literal('sig'),
      }),
    ),
  },
  {},
);

export const RotatedKeyBody = Type.Object({ kid: Type.String(), created_at: Time });
