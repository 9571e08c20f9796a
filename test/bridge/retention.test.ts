/** The events feed keeps events for a retention window; delivered ones go after it, dead letters stay. */
import { readDocument, toUserWrite } from '../../bridge/src/scim/resource';
import { resourceTypes } from '../../bridge/src/scim/schemas';
import { openSqlite } from '../../bridge/src/store/sqlite';

it('when events are older than the window, then those delivered go, those not yet delivered and dead letters stay', async () => {
  const store = openSqlite(':memory:');
  await store.migrate();
  for (let i = 0; i < 5; i++) {
    await store.createUser({ ...toUserWrite(readDocument(resourceTypes.User, { userName: `r${i}@example.com` })), status: 'invited' }, (u) => [
      { type: 'user.created', resourceId: u.id, data: { id: u.id } },
    ]);
  }
  const seqs = (await store.listEvents(0, 10)).map((e) => e.seq);
  expect(seqs).toHaveLength(5);
  await store.addDeadLetter(seqs[1], 'HTTP 400');
  const future = new Date(Date.now() + 60_000).toISOString();
  // Delivered up to the third event: the first and third go, the dead letter and the undelivered stay.
  expect(await store.purgeEvents(future, seqs[2])).toBe(2);
  expect((await store.listEvents(0, 10)).map((e) => e.seq)).toEqual([seqs[1], seqs[3], seqs[4]]);
  // Nothing is older than a window that starts in the past.
  expect(await store.purgeEvents(new Date(Date.now() - 60_000).toISOString(), Number.MAX_SAFE_INTEGER)).toBe(0);
  await store.close();
});
