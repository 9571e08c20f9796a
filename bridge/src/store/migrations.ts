/**
 * Schema migrations, run by Kysely's Migrator at start. One list for both stores; where SQLite and
 * PostgreSQL differ the migration asks which one it runs on. Never edit a migration that has shipped:
 * add the next one. (The PostgreSQL branches of 0001-0003 were settled when the PostgreSQL store first shipped,
 * in the version that added 0004; SQLite's were not touched.)
 */
import { Kysely, Migration, MigrationProvider, sql } from 'kysely';

export type DialectName = 'sqlite' | 'postgres';

function migrations(dialect: DialectName): Record<string, Migration> {
  const serial = dialect === 'postgres' ? 'bigserial' : 'integer';
  /**
   * Text compares byte by byte on both stores (SQLite's BINARY; PostgreSQL's "C" collation, whatever the database's
   * own collation is): `sw`, `gt`, `lt` and sorting give the same answer on both (rule 2 in types.ts).
   */
  const text = dialect === 'postgres' ? sql`text collate "C"` : 'text';
  /**
   * A sortable column that may be NULL: indexed NULLS FIRST on PostgreSQL, where SQLite's order (NULL lowest) is
   * kept by an explicit ORDER BY … NULLS FIRST that this index serves.
   */
  const nullableSortIndex = async (db: Kysely<any>, name: string, table: string, column: string) => {
    if (dialect === 'postgres') await sql`create index ${sql.id(name)} on ${sql.id(table)} (${sql.id(column)} nulls first)`.execute(db);
    else await db.schema.createIndex(name).on(table).column(column).execute();
  };
  return {
    '0001_directory': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('users')
          .addColumn('seq', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('id', text, (c) => c.notNull().unique())
          .addColumn('user_name', text, (c) => c.notNull())
          // Folded userName: the unique index that makes userName unique case-insensitively.
          .addColumn('user_name_ci', text, (c) => c.notNull().unique())
          .addColumn('external_id', text)
          .addColumn('display_name', text)
          .addColumn('display_name_ci', text)
          .addColumn('active', 'integer', (c) => c.notNull())
          .addColumn('doc', text, (c) => c.notNull())
          .addColumn('created', text, (c) => c.notNull())
          .addColumn('last_modified', text, (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .execute();
        await nullableSortIndex(db, 'users_external_id', 'users', 'external_id');
        await nullableSortIndex(db, 'users_display_name_ci', 'users', 'display_name_ci');
        await db.schema.createIndex('users_created').on('users').column('created').execute();
        await db.schema.createIndex('users_last_modified').on('users').column('last_modified').execute();

        // Every other searchable value of a user, one row each, so that any filter is an index lookup.
        let values = db.schema
          .createTable('attr_values')
          .addColumn('res_id', text, (c) => c.notNull())
          .addColumn('path', text, (c) => c.notNull())
          .addColumn('idx', 'integer', (c) => c.notNull())
          .addColumn('v', text, (c) => c.notNull())
          .addPrimaryKeyConstraint('attr_values_pk', ['res_id', 'path', 'idx', 'v']);
        if (dialect === 'sqlite') values = values.modifyEnd(sql`without rowid`);
        await values.execute();
        await db.schema.createIndex('attr_values_lookup').on('attr_values').columns(['path', 'v', 'res_id', 'idx']).execute();

        await db.schema
          .createTable('groups')
          .addColumn('seq', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('id', text, (c) => c.notNull().unique())
          .addColumn('display_name', text, (c) => c.notNull())
          .addColumn('display_name_ci', text, (c) => c.notNull().unique())
          .addColumn('external_id', text)
          .addColumn('doc', text, (c) => c.notNull())
          .addColumn('created', text, (c) => c.notNull())
          .addColumn('last_modified', text, (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .execute();
        await nullableSortIndex(db, 'groups_external_id', 'groups', 'external_id');
        await db.schema.createIndex('groups_created').on('groups').column('created').execute();
        await db.schema.createIndex('groups_last_modified').on('groups').column('last_modified').execute();

        // Members are rows: adding one to a group of 50,000 is one insert.
        let members = db.schema
          .createTable('group_members')
          .addColumn('group_id', text, (c) => c.notNull())
          .addColumn('member_id', text, (c) => c.notNull())
          .addColumn('member_type', text, (c) => c.notNull())
          .addPrimaryKeyConstraint('group_members_pk', ['group_id', 'member_id']);
        if (dialect === 'sqlite') members = members.modifyEnd(sql`without rowid`);
        await members.execute();
        await db.schema.createIndex('group_members_member').on('group_members').columns(['member_id', 'group_id']).execute();

        // The bridge's own settings, e.g. the hash of the token generated on first start.
        await db.schema
          .createTable('settings')
          .addColumn('key', text, (c) => c.primaryKey())
          .addColumn('value', text, (c) => c.notNull())
          .execute();
      },
    },
    '0002_lifecycle_and_outbox': {
      async up(db: Kysely<any>) {
        // invited until the person joins; suspended when deprovisioned after joining.
        await db.schema.alterTable('users').addColumn('status', text, (c) => c.notNull().defaultTo('invited')).execute();
        // Groups pushed by the IdP are managed; the application's own groups are not until taken over.
        await db.schema.alterTable('groups').addColumn('managed', 'integer', (c) => c.notNull().defaultTo(1)).execute();
        // The outbox: written in the same transaction as the change it describes.
        await db.schema
          .createTable('events')
          .addColumn('seq', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('id', text, (c) => c.notNull().unique())
          .addColumn('type', text, (c) => c.notNull())
          .addColumn('resource_id', text, (c) => c.notNull())
          .addColumn('occurred_at', text, (c) => c.notNull())
          .addColumn('data', text, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('events_resource').on('events').columns(['resource_id', 'seq']).execute();
        await db.schema.createIndex('events_occurred_at').on('events').column('occurred_at').execute();
      },
    },
    '0003_dead_letters': {
      async up(db: Kysely<any>) {
        // Events the downstream never accepted: kept, visible in /health and replayable.
        await db.schema
          .createTable('dead_letters')
          .addColumn('seq', dialect === 'postgres' ? 'bigint' : 'integer', (c) => c.primaryKey())
          .addColumn('failed_at', text, (c) => c.notNull())
          .addColumn('error', text, (c) => c.notNull())
          .execute();
      },
    },
    '0004_leases': {
      async up(db: Kysely<any>) {
        // Leases: what runs on one replica at a time (webhook delivery), with the cursor only the holder moves.
        await db.schema
          .createTable('leases')
          .addColumn('name', text, (c) => c.primaryKey())
          .addColumn('holder', text, (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('cursor', 'bigint', (c) => c.notNull().defaultTo(0))
          .execute();
        // The delivery cursor moves from the settings into the lease.
        await sql`insert into leases (name, holder, expires_at, cursor)
          select 'webhook', '', 0, cast(value as bigint) from settings where key = 'webhook_cursor'`.execute(db);
        await db.deleteFrom('settings').where('key', '=', 'webhook_cursor').execute();
      },
    },
  };
}

export class StaticMigrations implements MigrationProvider {
  constructor(private readonly dialect: DialectName) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.dialect);
  }
}
