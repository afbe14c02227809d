import { Migrator, sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import { API_KEY_PREFIX, newId } from '../core/index.ts';

/**
 * The one migration set, applied at start on SQLite and PostgreSQL alike. Names sort in order; never edit
 * a migration that has shipped, add the next one.
 */
export const migrations: Record<string, Migration> = {
  '0001_users_connections_secrets': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('name', 'text', (col) => col.notNull().unique())
        .addColumn('is_admin', 'boolean', (col) => col.notNull())
        .addColumn('api_key_hash', 'text', (col) => col.notNull().unique())
        .addColumn('created_at', 'text', (col) => col.notNull())
        .execute();

      await db.schema
        .createTable('connections')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('user_id', 'text', (col) => col.notNull().references('users.id'))
        .addColumn('provider', 'text', (col) => col.notNull())
        .addColumn('kind', 'text', (col) => col.notNull())
        .addColumn('base_url', 'text', (col) => col.notNull())
        .addColumn('host', 'text', (col) => col.notNull())
        .addColumn('label', 'text', (col) => col.notNull())
        .addColumn('account', 'text')
        .addColumn('scopes', 'text', (col) => col.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('status', 'text', (col) => col.notNull())
        .addColumn('status_reason', 'text')
        .addColumn('ca_pem', 'text')
        .addColumn('instance_version', 'text')
        .addColumn('checked_at', 'text', (col) => col.notNull())
        .addColumn('created_at', 'text', (col) => col.notNull())
        // Target of the secrets' composite foreign key below.
        .addUniqueConstraint('connections_id_user_id_unique', ['id', 'user_id'])
        .execute();
      await db.schema.createIndex('connections_user_id_index').on('connections').column('user_id').execute();

      await db.schema
        .createTable('secrets')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('owner_id', 'text', (col) => col.notNull().references('users.id'))
        .addColumn('connection_id', 'text', (col) => col.notNull())
        .addColumn('purpose', 'text', (col) => col.notNull())
        .addColumn('sealed', 'text', (col) => col.notNull())
        .addColumn('updated_at', 'text', (col) => col.notNull())
        .addUniqueConstraint('secrets_connection_id_purpose_unique', ['connection_id', 'purpose'])
        // A secret's owner is its connection's owner: the database refuses anything else. No cascade:
        // deleting a connection deletes its secrets explicitly, so a forgotten path fails instead of lingering.
        .addForeignKeyConstraint(
          'secrets_connection_fk',
          ['connection_id', 'owner_id'],
          'connections',
          ['id', 'user_id'],
        )
        .execute();
      await db.schema.createIndex('secrets_owner_id_index').on('secrets').column('owner_id').execute();
    },
  },
  '0002_runs': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('runs')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('user_id', 'text', (col) => col.notNull().references('users.id'))
        // Deliberately not a foreign key: deleting a connection must not delete, or be blocked by, the record
        // of what its runs did.
        .addColumn('connection_id', 'text', (col) => col.notNull())
        .addColumn('project', 'text', (col) => col.notNull())
        .addColumn('project_id', 'bigint')
        .addColumn('project_path', 'text')
        .addColumn('project_web_url', 'text')
        .addColumn('branch', 'text')
        .addColumn('base_branch', 'text')
        .addColumn('command', 'text', (col) => col.notNull())
        .addColumn('allow_hosts', 'text', (col) => col.notNull())
        .addColumn('timeout_ms', 'bigint', (col) => col.notNull())
        .addColumn('status', 'text', (col) => col.notNull())
        .addColumn('error', 'text')
        .addColumn('exit_code', 'integer')
        .addColumn('warnings', 'text', (col) => col.notNull())
        .addColumn('outputs', 'text', (col) => col.notNull())
        .addColumn('egress', 'text', (col) => col.notNull())
        .addColumn('created_at', 'text', (col) => col.notNull())
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .execute();
      // `GET /runs`: one user's runs, newest first.
      await db.schema.createIndex('runs_user_id_created_at_index').on('runs').columns(['user_id', 'created_at']).execute();
      // Workers and restart recovery look runs up by status.
      await db.schema.createIndex('runs_status_index').on('runs').column('status').execute();

      await db.schema
        .createTable('run_logs')
        .addColumn('run_id', 'text', (col) => col.notNull().references('runs.id'))
        .addColumn('seq', 'integer', (col) => col.notNull())
        .addColumn('at', 'text', (col) => col.notNull())
        .addColumn('stream', 'text', (col) => col.notNull())
        .addColumn('text', 'text', (col) => col.notNull())
        .addPrimaryKeyConstraint('run_logs_pk', ['run_id', 'seq'])
        .execute();
    },
  },
  '0003_passwords_sessions': {
    async up(db: Kysely<unknown>) {
      // Null until `forgelink admin user set-password`: such a user signs in to the dashboard with an API key.
      await db.schema.alterTable('users').addColumn('password_hash', 'text').execute();

      await db.schema
        .createTable('sessions')
        // SHA-256 of the cookie's random value: a database reader cannot turn a row back into a cookie.
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('user_id', 'text', (col) => col.notNull().references('users.id'))
        .addColumn('csrf_token', 'text', (col) => col.notNull())
        .addColumn('created_at', 'text', (col) => col.notNull())
        .addColumn('last_seen_at', 'text', (col) => col.notNull())
        .addColumn('expires_at', 'text', (col) => col.notNull())
        .execute();
      // Signing a user out everywhere (a new password) and sweeping expired sessions.
      await db.schema.createIndex('sessions_user_id_index').on('sessions').column('user_id').execute();
      await db.schema.createIndex('sessions_expires_at_index').on('sessions').column('expires_at').execute();
    },
  },
  '0004_oauth_states_token_expiry': {
    async up(db: Kysely<unknown>) {
      // OAuth connections: when the current access token expires (ISO time), so it is refreshed before then.
      await db.schema.alterTable('connections').addColumn('token_expires_at', 'text').execute();

      // One row per started OAuth authorization. The `state` is stored only as its SHA-256 and the PKCE
      // verifier only sealed; `used_at` makes a state single use even when its callback fails.
      await db.schema
        .createTable('oauth_states')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('state_hash', 'text', (col) => col.notNull().unique())
        .addColumn('session_id', 'text', (col) => col.notNull())
        .addColumn('user_id', 'text', (col) => col.notNull().references('users.id'))
        .addColumn('base_url', 'text', (col) => col.notNull())
        .addColumn('verifier_sealed', 'text', (col) => col.notNull())
        .addColumn('created_at', 'text', (col) => col.notNull())
        .addColumn('used_at', 'text')
        .execute();
      // Sweeping old states.
      await db.schema.createIndex('oauth_states_created_at_index').on('oauth_states').column('created_at').execute();
    },
  },
  '0005_audit_events': {
    async up(db: Kysely<unknown>) {
      // Append-only: who decrypted which token and why, and what happened to connections and runs. No foreign
      // keys, so the trail outlives the connections and runs it speaks of.
      await db.schema
        .createTable('audit_events')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('at', 'text', (col) => col.notNull())
        .addColumn('owner_id', 'text', (col) => col.notNull())
        .addColumn('actor', 'text', (col) => col.notNull())
        .addColumn('action', 'text', (col) => col.notNull())
        .addColumn('connection_id', 'text')
        .addColumn('run_id', 'text')
        .addColumn('reason', 'text')
        .addColumn('details', 'text', (col) => col.notNull())
        .execute();
      await db.schema.createIndex('audit_events_owner_at_index').on('audit_events').columns(['owner_id', 'at']).execute();
      await db.schema.createIndex('audit_events_connection_index').on('audit_events').columns(['connection_id', 'at']).execute();
    },
  },
  '0006_leases_connection_events': {
    async up(db: Kysely<unknown>) {
      // Named leases (the health monitor's): one holder at a time across every process on this database, taken
      // and renewed with a conditional UPDATE; `expires_at` lets a dead holder's lease pass on.
      await db.schema
        .createTable('leases')
        .addColumn('name', 'text', (col) => col.primaryKey())
        .addColumn('holder', 'text', (col) => col.notNull())
        .addColumn('expires_at', 'text', (col) => col.notNull())
        .execute();

      // Every change of a connection's status, written with the change itself. `notified_at` is set once the
      // operator's webhook was handed the event (null: not yet), so a restart never sends it twice.
      await db.schema
        .createTable('connection_events')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('connection_id', 'text', (col) => col.notNull())
        .addColumn('owner_id', 'text', (col) => col.notNull())
        .addColumn('at', 'text', (col) => col.notNull())
        .addColumn('from_status', 'text', (col) => col.notNull())
        .addColumn('to_status', 'text', (col) => col.notNull())
        .addColumn('reason', 'text')
        .addColumn('notified_at', 'text')
        .execute();
      await db.schema.createIndex('connection_events_connection_at_index').on('connection_events').columns(['connection_id', 'at']).execute();
      await db.schema.createIndex('connection_events_notified_at_index').on('connection_events').columns(['notified_at', 'at']).execute();

      // Notices sent once per connection and key (`expiring:7:<expiry date>`): the primary key makes the first
      // insert win, in every process, so a restart or a second process does not warn twice.
      await db.schema
        .createTable('connection_notices')
        .addColumn('connection_id', 'text', (col) => col.notNull())
        .addColumn('notice', 'text', (col) => col.notNull())
        .addColumn('at', 'text', (col) => col.notNull())
        .addPrimaryKeyConstraint('connection_notices_pk', ['connection_id', 'notice'])
        .execute();

      // The monitor's sweep looks for connections whose last check is old.
      await db.schema.createIndex('connections_checked_at_index').on('connections').column('checked_at').execute();
    },
  },
  '0007_token_rotation': {
    async up(db: Kysely<unknown>) {
      // Opt-in self-rotation of a personal access token. A null lifetime means never configured (off). One column
      // per statement: SQLite's ALTER TABLE adds one at a time.
      await db.schema.alterTable('connections').addColumn('rotation_enabled', 'integer', (col) => col.notNull().defaultTo(0)).execute();
      await db.schema.alterTable('connections').addColumn('rotation_lifetime_days', 'integer').execute();
      await db.schema.alterTable('connections').addColumn('rotation_threshold_days', 'integer').execute();
      await db.schema.alterTable('connections').addColumn('rotated_at', 'text').execute();

      // The write-ahead intent of a rotation in progress, at most one per connection (the primary key). Committed
      // before GitLab is asked; GitLab's answer is stored on it, sealed, as soon as it arrives; deleted in the
      // transaction that makes the new token the connection's. No foreign key: on PostgreSQL it would take a share
      // lock on the connection's row, which its lock holder (FOR UPDATE) blocks.
      await db.schema
        .createTable('token_rotations')
        .addColumn('connection_id', 'text', (col) => col.primaryKey())
        .addColumn('owner_id', 'text', (col) => col.notNull())
        .addColumn('attempt_id', 'text', (col) => col.notNull().unique())
        .addColumn('requested_expires_at', 'text', (col) => col.notNull())
        .addColumn('actor', 'text', (col) => col.notNull())
        .addColumn('reason', 'text', (col) => col.notNull())
        .addColumn('started_at', 'text', (col) => col.notNull())
        // GitLab's answer: the new token sealed for (owner, attempt, 'rotated_token'), and its fields as JSON.
        .addColumn('answer_sealed', 'text')
        .addColumn('answer', 'text')
        .execute();
    },
  },
  '0008_api_keys': {
    async up(db: Kysely<any>) {
      // Any number of named keys per user, replacing the one hash on the user's row. Revoked keys stay, so the audit
      // log's key ids keep meaning something.
      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('user_id', 'text', (col) => col.notNull().references('users.id'))
        .addColumn('name', 'text', (col) => col.notNull())
        .addColumn('prefix', 'text', (col) => col.notNull())
        .addColumn('key_hash', 'text', (col) => col.notNull().unique())
        .addColumn('created_at', 'text', (col) => col.notNull())
        .addColumn('last_used_at', 'text')
        .addColumn('revoked_at', 'text')
        .execute();
      await db.schema.createIndex('api_keys_user_id_index').on('api_keys').column('user_id').execute();
      // A name picks one working key: no two unrevoked keys of a user share one (both databases support partial indexes).
      await db.schema
        .createIndex('api_keys_user_id_name_active_unique')
        .on('api_keys')
        .columns(['user_id', 'name'])
        .unique()
        .where(sql.ref('revoked_at'), 'is', null)
        .execute();

      // Every existing key moves over as the user's key "initial", so it keeps working. Only its hash was ever stored,
      // so its prefix is unknown beyond `flk_`. The user's column is left holding a value no digest matches.
      const users: { id: string; api_key_hash: string; created_at: string }[] = await db
        .selectFrom('users')
        .select(['id', 'api_key_hash', 'created_at'])
        .execute();
      for (const user of users) {
        await db
          .insertInto('api_keys')
          .values({
            id: newId('key'),
            user_id: user.id,
            name: 'initial',
            prefix: API_KEY_PREFIX,
            key_hash: user.api_key_hash,
            created_at: user.created_at,
            last_used_at: null,
            revoked_at: null,
          })
          .execute();
        await db.updateTable('users').set({ api_key_hash: retiredKeyHash(user.id) }).where('id', '=', user.id).execute();
      }
    },
  },
  '0009_user_secrets': {
    async up(db: Kysely<unknown>) {
      // A user's named secrets (ANTHROPIC_API_KEY…). The value is only ever stored sealed, bound to the user, the
      // row and the name (vault/binding.ts); one name per user.
      await db.schema
        .createTable('user_secrets')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('user_id', 'text', (col) => col.notNull().references('users.id'))
        .addColumn('name', 'text', (col) => col.notNull())
        .addColumn('hosts', 'text', (col) => col.notNull())
        .addColumn('sealed', 'text', (col) => col.notNull())
        .addColumn('created_at', 'text', (col) => col.notNull())
        .addColumn('updated_at', 'text', (col) => col.notNull())
        .addColumn('last_used_at', 'text')
        .addUniqueConstraint('user_secrets_user_id_name_unique', ['user_id', 'name'])
        .execute();
      // The names of the secrets a run receives (never their values).
      await db.schema.alterTable('runs').addColumn('secrets', 'text', (col) => col.notNull().defaultTo('[]')).execute();
    },
  },
  '0010_run_agent': {
    // Runs from before agent profiles ran the user's own command on the host's /usr.
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('runs').addColumn('agent', 'text', (col) => col.notNull().defaultTo('custom')).execute();
      await db.schema.alterTable('runs').addColumn('image_ref', 'text', (col) => col.notNull().defaultTo('host')).execute();
      await db.schema.alterTable('runs').addColumn('image_digest', 'text').execute();
    },
  },
  '0011_run_clone': {
    // How a run's workspace was made (docs/architecture.md, "The repository cache"); null for runs before it.
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('runs').addColumn('clone_depth', 'integer').execute();
      await db.schema.alterTable('runs').addColumn('clone_filter', 'text').execute();
      await db.schema.alterTable('runs').addColumn('repo_cache', 'text').execute();
      await db.schema.alterTable('runs').addColumn('ready_ms', 'bigint').execute();
      await db.schema.alterTable('runs').addColumn('clone_ms', 'bigint').execute();
    },
  },
  '0012_run_credentials': {
    // The credential broker: runs before it gave the sandbox the real token (`direct`) and had no policy.
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('runs').addColumn('credentials', 'text', (col) => col.notNull().defaultTo('direct')).execute();
      await db.schema.alterTable('runs').addColumn('policy', 'text', (col) => col.notNull().defaultTo('{"refused":[]}')).execute();
    },
  },
  '0013_workers': {
    // Several processes execute runs (docs/architecture.md, "Processes"): which one took a run, a cancel it must
    // see even if it missed the signal, and the workers' heartbeats.
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('runs').addColumn('worker_id', 'text').execute();
      await db.schema.alterTable('runs').addColumn('cancel_requested_at', 'text').execute();
      await db.schema.createIndex('runs_worker_id_index').on('runs').column('worker_id').execute();
      await db.schema
        .createTable('workers')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('host', 'text', (col) => col.notNull())
        .addColumn('pid', 'integer', (col) => col.notNull())
        .addColumn('capacity', 'integer', (col) => col.notNull())
        .addColumn('running', 'integer', (col) => col.notNull())
        .addColumn('state', 'text', (col) => col.notNull())
        .addColumn('started_at', 'text', (col) => col.notNull())
        .addColumn('last_heartbeat_at', 'text', (col) => col.notNull())
        .execute();
    },
  },
  '0014_connection_policy': {
    // A connection's defaults for its runs (docs/contract.md, "Run policy"): how they hold credentials (null: the
    // server's) and the policy options it turns off (JSON; `{}`: none). Rows before it keep the server's defaults.
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('connections').addColumn('credentials', 'text').execute();
      await db.schema.alterTable('connections').addColumn('policy', 'text', (col) => col.notNull().defaultTo('{}')).execute();
    },
  },
};

/** What `users.api_key_hash` holds since migration 0008: unique per user, and never a SHA-256 digest. */
export function retiredKeyHash(userId: string): string {
  return `api_keys:${userId}`;
}

/** Applies every pending migration; throws with the failing migration's error. */
export async function migrateToLatest(db: Kysely<any>): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName;
    const which = failed === undefined ? '' : ` ${failed}`;
    throw new Error(`Database migration${which} failed.`, { cause: error });
  }
}
