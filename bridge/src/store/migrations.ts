/**
 * Schema migrations, run by Kysely's Migrator at start. One list for both stores; where SQLite and
 * PostgreSQL differ the migration asks which one it runs on. Never edit a migration that has shipped:
 * add the next one. (The PostgreSQL branches of 0001-0005 were settled when the PostgreSQL store first shipped,
 * in the version that added 0006; SQLite's were not touched.)
 */
import { Kysely, Migration, MigrationProvider, sql } from 'kysely';

export type DialectName = 'sqlite' | 'postgres';

/**
 * The columns whose values go into `texts` (SQLite's trigram index), besides every attr_values.v (0004); on
 * PostgreSQL, the columns that have a pg_trgm index of their own.
 */
export const TEXT_COLUMNS = {
  users: ['user_name_ci', 'display_name_ci', 'external_id'],
  groups: ['display_name_ci', 'external_id'],
} as const;
/** The triggers that keep `texts` counted: the store's bulk insert sets them aside and counts in one go. */
export const TEXT_TRIGGER_TABLES = ['attr_values', 'users', 'groups'] as const;

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
    '0004_substring_index': {
      async up(db: Kysely<any>) {
        if (dialect === 'postgres') {
          // PostgreSQL: pg_trgm's GIN indexes on the same columns serve `co` and `ew` (LIKE) directly, and keep
          // themselves as rows come and go. pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner
          // may create it; where the bridge's role may not, an administrator creates it once beforehand.
          // fastupdate off: without it new rows wait in a pending list that every search reads through (and that
          // makes the planner price the index above a scan) until a vacuum; a write pays its index entries at once.
          await sql`create extension if not exists pg_trgm`.execute(db);
          await sql`create index attr_values_v_trgm on attr_values using gin (v gin_trgm_ops) with (fastupdate = off)`.execute(db);
          for (const [table, columns] of Object.entries(TEXT_COLUMNS)) {
            for (const c of columns) {
              await sql`create index ${sql.id(`${table}_${c}_trgm`)} on ${sql.id(table)} using gin (${sql.id(c)} gin_trgm_ops) with (fastupdate = off)`.execute(db);
            }
          }
          return;
        }
        // Every distinct searchable text (3 characters or more: a trigram), once, with the number of rows and
        // columns holding it. Triggers keep it: whatever writes the tables (the store, a restore, a test's bulk
        // seed) keeps the index right. A text no longer used keeps its row (refs 0) until maintenance removes
        // it, so that rewriting a user's values does not delete and re-add its texts.
        await sql`create table texts (id integer primary key, v text not null unique, refs integer not null)`.execute(db);
        await sql`create index texts_unused on texts (id) where refs <= 0`.execute(db);
        // A trigram index over those texts: `co` and `ew` find their candidates through the rarest trigram of
        // the operand, and compare the candidates exactly. Case-sensitive: values are folded before they are
        // stored (caseExact=false), as filter operands are. detail=none: only which texts hold a trigram.
        const sources = [
          'select v from attr_values',
          ...Object.entries(TEXT_COLUMNS).flatMap(([table, columns]) => columns.map((c) => `select ${c} from ${table}`)),
        ];
        await sql.raw(`insert into texts (v, refs) select v, count(*) from (${sources.join(' union all ')}) where length(v) >= 3 group by v`).execute(db);
        await sql`create virtual table texts_fts using fts5(v, content='texts', content_rowid='id', tokenize='trigram case_sensitive 1', detail='none', columnsize=0)`.execute(db);
        await sql`insert into texts_fts (texts_fts) values ('rebuild')`.execute(db);
        await sql`create trigger texts_fts_insert after insert on texts begin
          insert into texts_fts (rowid, v) values (new.id, new.v); end`.execute(db);
        await sql`create trigger texts_fts_delete after delete on texts begin
          insert into texts_fts (texts_fts, rowid, v) values ('delete', old.id, old.v); end`.execute(db);
        // One statement per value, so that a text held twice by one row (displayName = userName) counts twice.
        const add = (values: string[]) =>
          values.map((v) => `insert into texts (v, refs) select ${v}, 1 where length(${v}) >= 3 on conflict (v) do update set refs = refs + 1;`).join(' ');
        const drop = (values: string[]) => values.map((v) => `update texts set refs = refs - 1 where v = ${v};`).join(' ');
        await sql.raw(`create trigger attr_values_texts_insert after insert on attr_values begin ${add(['new.v'])} end`).execute(db);
        await sql.raw(`create trigger attr_values_texts_delete after delete on attr_values begin ${drop(['old.v'])} end`).execute(db);
        for (const [table, columns] of Object.entries(TEXT_COLUMNS)) {
          const of = (row: 'new' | 'old') => columns.map((c) => `${row}.${c}`);
          const changed = columns.map((c) => `old.${c} is not new.${c}`).join(' or ');
          await sql.raw(`create trigger ${table}_texts_insert after insert on ${table} begin ${add(of('new'))} end`).execute(db);
          await sql.raw(`create trigger ${table}_texts_delete after delete on ${table} begin ${drop(of('old'))} end`).execute(db);
          await sql
            .raw(`create trigger ${table}_texts_update after update of ${columns.join(', ')} on ${table} when ${changed} begin ${drop(of('old'))} ${add(of('new'))} end`)
            .execute(db);
        }
      },
    },
    '0005_identifiers_nfc': {
      async up(db: Kysely<any>) {
        // From now on userName and emails are kept, keyed and compared in Unicode normal form C (the SCIM layer
        // normalises what it writes and the operands of filters). Users written before keep their documents
        // (normalised at their next write) but are re-keyed now: otherwise "é" as one character and "é" as
        // "e" + accent would be two userNames, and a lookup in the new form would miss the old user. A user
        // whose new key another user holds already (two names differing only in form) keeps its old key:
        // both stay as they were, rather than the upgrade failing.
        const ascii = /^[\x00-\x7f]*$/;
        let after = 0;
        for (;;) {
          const rows: { seq: number; id: string; user_name: string; user_name_ci: string; doc: string }[] = await db
            .selectFrom('users')
            .select(['seq', 'id', 'user_name', 'user_name_ci', 'doc'])
            .where('seq', '>', after)
            .orderBy('seq')
            .limit(1000)
            .execute();
          if (rows.length === 0) break;
          after = Number(rows[rows.length - 1].seq);
          for (const row of rows) {
            if (ascii.test(row.user_name) && ascii.test(row.doc)) continue;
            const key = row.user_name.normalize('NFC').toLowerCase();
            if (key !== row.user_name_ci && !(await db.selectFrom('users').select('id').where('user_name_ci', '=', key).executeTakeFirst())) {
              await db.updateTable('users').set({ user_name_ci: key }).where('id', '=', row.id).execute();
            }
            const emails = (JSON.parse(row.doc) as { emails?: { value?: unknown }[] }).emails;
            for (const [idx, email] of (Array.isArray(emails) ? emails : []).entries()) {
              if (typeof email?.value !== 'string') continue;
              const [was, now] = [email.value.toLowerCase(), email.value.normalize('NFC').toLowerCase()];
              if (was === now) continue;
              // Delete and insert (not update): the index of texts counts rows as they come and go.
              const gone = await db.deleteFrom('attr_values').where('res_id', '=', row.id).where('path', '=', 'emails.value').where('idx', '=', idx).where('v', '=', was).executeTakeFirst();
              if (Number(gone.numDeletedRows) > 0) {
                await db.insertInto('attr_values').values({ res_id: row.id, path: 'emails.value', idx, v: now }).onConflict((oc) => oc.doNothing()).execute();
              }
            }
          }
        }
      },
    },
    '0006_leases': {
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
    // /metrics and the status page count users by status: an index scan, not a read of every document.
    '0007_users_status': {
      async up(db: Kysely<any>) {
        await db.schema.createIndex('users_status').on('users').column('status').execute();
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
