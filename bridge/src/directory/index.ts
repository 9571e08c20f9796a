/**
 * The directory: the rules of what may change and how. For now it passes SCIM's reads and writes to
 * the store; lifecycle (invited/active/suspended), managed groups and the outbox of events live here.
 */
import type {
  ExpectedVersion,
  GroupRecord,
  GroupWrite,
  ListQuery,
  MemberChange,
  Page,
  Store,
  UserRecord,
  UserWrite,
} from '../store';

export { foldCase } from '../store';
export type {
  CompareOp,
  ExpectedVersion,
  GroupRecord,
  GroupWrite,
  IndexRow,
  ListQuery,
  MemberChange,
  MemberRef,
  Page,
  SortablePath,
  StoreFilter,
  UserRecord,
  UserWrite,
} from '../store';

export class Directory {
  constructor(private readonly store: Store) {}

  health(): Promise<void> {
    return this.store.ping();
  }

  getUser(id: string): Promise<UserRecord | null> {
    return this.store.getUser(id);
  }
  listUsers(query: ListQuery): Promise<Page<UserRecord>> {
    return this.store.listUsers(query);
  }
  groupsOf(userIds: readonly string[]) {
    return this.store.groupsOf(userIds);
  }
  createUser(user: UserWrite): Promise<UserRecord> {
    return this.store.createUser(user);
  }
  updateUser(id: string, change: (current: UserRecord) => UserWrite, expected?: ExpectedVersion): Promise<UserRecord | null> {
    return this.store.updateUser(id, change, expected);
  }
  deleteUser(id: string, expected?: ExpectedVersion): Promise<boolean> {
    return this.store.deleteUser(id, expected);
  }

  getGroup(id: string, withMembers: boolean): Promise<GroupRecord | null> {
    return this.store.getGroup(id, withMembers);
  }
  listGroups(query: ListQuery, withMembers: boolean): Promise<Page<GroupRecord>> {
    return this.store.listGroups(query, withMembers);
  }
  createGroup(group: GroupWrite, members: readonly string[]): Promise<GroupRecord> {
    return this.store.createGroup(group, members);
  }
  updateGroup(
    id: string,
    change: (current: GroupRecord) => { group: GroupWrite; members: readonly MemberChange[] },
    expected?: ExpectedVersion,
  ): Promise<GroupRecord | null> {
    return this.store.updateGroup(id, change, expected);
  }
  deleteGroup(id: string, expected?: ExpectedVersion): Promise<boolean> {
    return this.store.deleteGroup(id, expected);
  }
}
