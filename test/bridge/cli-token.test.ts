/**
 * `scim-bridge token hash` prints the SHA-256 that SCIM_BRIDGE_TOKEN_SHA256 expects: a bridge given that hash
 * accepts the token, and `token new` makes a token the bridge accepts the same way.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startBridge, TestBridge } from '../helpers/bridge';
import { runCli } from '../helpers/cli';

const BIN = join(__dirname, '..', '..', 'bridge', 'bin', 'scim-bridge.js');

let bridge: TestBridge | undefined;
afterEach(async () => {
  await bridge?.stop();
  bridge = undefined;
});

/** A bridge that knows the IdP token only by this hash. */
async function bridgeAccepting(hash: string): Promise<TestBridge> {
  return startBridge({ SCIM_BRIDGE_TOKEN: '', SCIM_BRIDGE_TOKEN_SHA256: hash });
}

describe('token hash', () => {
  test('when a token is piped in, then the bridge given the printed hash accepts that token and no other', async () => {
    const token = 'okta-token-7f3a9c2e51d84b06';
    const hashed = await runCli(['token', 'hash'], { stdin: `${token}\n` });
    expect(hashed).toMatchObject({ code: 0, stderr: '' });
    const hash = hashed.stdout.trim();
    expect(hash).toMatch(/^[0-9a-f]{64}$/);

    bridge = await bridgeAccepting(hash);
    const accepted = await bridge.anonymous().get('/ServiceProviderConfig').set('Authorization', `Bearer ${token}`);
    expect(accepted.status).toBe(200);
    const refused = await bridge.anonymous().get('/ServiceProviderConfig').set('Authorization', `Bearer ${token}x`);
    expect(refused.status).toBe(401);
  });

  test('when the token comes without a line break or with a CRLF, then the hash is the same', async () => {
    const token = 'entra-token-0123456789abcdef';
    const plain = await runCli(['token', 'hash'], { stdin: token });
    const crlf = await runCli(['token', 'hash'], { stdin: `${token}\r\n` });
    expect(plain.stdout).toBe(crlf.stdout);
  });

  test.each([
    ['nothing', '', /no token on stdin/],
    ['a short token', 'short\n', /at least 16/],
    ['two words', 'two words pasted here\n', /space or a line break/],
  ])('when given %s, then it prints no hash and says what is wrong', async (_what, stdin, message) => {
    const result = await runCli(['token', 'hash'], { stdin });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
  });

  test('through the bin, as `npx scim-bridge token hash` runs it', () => {
    const token = 'jumpcloud-token-9d8c7b6a5f4e';
    const out = execFileSync(process.execPath, [BIN, 'token', 'hash'], { input: `${token}\n`, encoding: 'utf8', timeout: 60_000 });
    expect(out).toBe(`${require('node:crypto').createHash('sha256').update(token).digest('hex')}\n`);
  });
});

describe('token new', () => {
  test('when a token is generated, then the bridge given its printed hash accepts it', async () => {
    const made = await runCli(['token', 'new']);
    expect(made.code).toBe(0);
    const token = /^token: (\S+)$/m.exec(made.stdout)![1];
    const hash = /^sha256: ([0-9a-f]{64})$/m.exec(made.stdout)![1];
    expect(token.length).toBeGreaterThanOrEqual(43);
    expect((await runCli(['token', 'hash'], { stdin: token })).stdout.trim()).toBe(hash);

    bridge = await bridgeAccepting(hash);
    expect((await bridge.anonymous().get('/Users').set('Authorization', `Bearer ${token}`)).status).toBe(200);
  });
});

describe('the command line', () => {
  test('an unknown command or option exits 2 with the usage', async () => {
    expect(await runCli(['frobnicate'])).toMatchObject({ code: 2, stderr: expect.stringContaining('usage: npx scim-bridge') });
    expect(await runCli(['token'])).toMatchObject({ code: 2, stderr: expect.stringContaining('token hash') });
    expect(await runCli(['backup', 'x.db', '--forse'])).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown option --forse') });
  });
});
