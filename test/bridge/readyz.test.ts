/**
 * GET /readyz (DESIGN.md, Kubernetes readiness): open like /healthz and as terse, but it asks the store: 200 when
 * the store answers, 503 when it does not, so a replica without its database leaves the Service's endpoints.
 */
import { startBridge, TestBridge } from '../helpers/bridge';

let b: TestBridge;
beforeAll(async () => {
  b = await startBridge();
});
afterAll(() => b.stop());
afterEach(() => jest.restoreAllMocks());

it('when the store answers, then /readyz is 200 without a token and without details', async () => {
  const res = await b.anonymous().get('/readyz');
  expect(res.status).toBe(200);
  expect(res.text).toBe('ready');
  expect(res.headers['cache-control']).toMatch(/no-store/);
});

it('when the store does not answer, then /readyz is 503 and says nothing of the error; /healthz stays 200', async () => {
  jest.spyOn(b.bridge.store, 'ping').mockRejectedValue(new Error('connect ECONNREFUSED 10.0.0.5:5432 password=hunter2'));
  const res = await b.anonymous().get('/readyz');
  expect(res.status).toBe(503);
  expect(res.text).toBe('not ready');
  expect(res.text).not.toMatch(/ECONNREFUSED|5432|hunter2/);
  await b.anonymous().get('/healthz').expect(200);
});
