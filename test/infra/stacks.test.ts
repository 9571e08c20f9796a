/**
 * The example stacks a newcomer copies: nothing in them may turn away real users. An `allowedDomains:
 * [example.com]` left live made every real user of a new bridge get 400; the setting ships commented out.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { plan, stackNames } from '../../tools/plan';
import { all } from '../helpers/plan';

const STACKS = stackNames().filter((s) => ['gcp', 'digitalocean', 'aws'].includes(s));

test('the VM stacks are all here', () => {
  expect(STACKS.sort()).toEqual(['aws', 'digitalocean', 'gcp']);
});

describe.each(STACKS)('stacks/Pulumi.%s.yaml', (stack) => {
  const text = readFileSync(join(__dirname, '../../stacks', `Pulumi.${stack}.yaml`), 'utf8');
  const config = (parse(text) as { config: Record<string, unknown> }).config;

  test('allowedDomains is shown, commented out, never live', () => {
    expect(config['scim-bridge:allowedDomains']).toBeUndefined();
    expect(text).toMatch(/^ {2}# scim-bridge:allowedDomains:$/m);
  });

  test('the host it plans accepts every domain and reboots for updates at 04:00 UTC by default', async () => {
    const result = await plan(stack);
    const hosts = all(result, { gcp: 'gcp:compute/instance:Instance', digitalocean: 'digitalocean:index/droplet:Droplet', aws: 'aws:ec2/instance:Instance' }[stack]!);
    expect(hosts).toHaveLength(1);
    const userData: string = stack === 'gcp' ? hosts[0].in.metadata['user-data'] : hosts[0].in.userData;
    // The bridge's env file is there (the token's hashes are fetched: their file is named).
    expect(userData).toContain('SCIM_BRIDGE_TOKEN_SHA256_FILE=/run/secrets/token-sha256');
    expect(userData).not.toContain('SCIM_BRIDGE_ALLOWED_DOMAINS');
    expect(userData).toContain('Unattended-Upgrade::Automatic-Reboot-Time "04:00";');
  });
});
