/**
 * The stack configuration: every rule shows its one-line message, naming the key and the fix; all problems
 * are reported together; good values come out typed, with defaults.
 */
import * as pulumi from '@pulumi/pulumi';
import { DEFAULT_IMAGE, parseStackConfig, RawConfig, StackConfigError } from '../../infra/config';
import { defaultImage } from '../../infra/image';

const GOOD: Record<string, string> = {
  'gcp:project': 'my-project',
  'scim-bridge:target': 'gcp',
  'scim-bridge:domain': 'scim.example.com',
  'scim-bridge:dnsZone': 'example-com',
  'scim-bridge:zone': 'europe-west1-b',
  'scim-bridge:alertEmail': 'ops@example.com',
};

function raw(values: Record<string, string | undefined>, secrets: string[] = []): RawConfig {
  const all = Object.fromEntries(Object.entries({ ...GOOD, ...values }).filter(([, v]) => v !== undefined)) as Record<string, string>;
  return { get: (k) => all[k], isSecret: (k) => secrets.includes(k), keys: () => Object.keys(all) };
}

function parse(values: Record<string, string | undefined>, secrets: string[] = []) {
  return parseStackConfig(raw(values, secrets), (v) => pulumi.secret(v));
}

function problems(values: Record<string, string | undefined>, secrets: string[] = []): string[] {
  try {
    parse(values, secrets);
  } catch (err) {
    expect(err).toBeInstanceOf(StackConfigError);
    return (err as StackConfigError).problems;
  }
  throw new Error('expected the configuration to be refused');
}

function expectOne(values: Record<string, string | undefined>, pattern: RegExp, secrets: string[] = []) {
  const found = problems(values, secrets);
  expect(found).toHaveLength(1);
  expect(found[0]).toMatch(pattern);
  expect(found[0]).not.toContain('\n');
}

describe('a good configuration', () => {
  test('comes out typed, with defaults', () => {
    const c = parse({});
    expect(c).toMatchObject({
      target: 'gcp',
      domain: 'scim.example.com',
      dnsZone: 'example-com',
      // No published image of this version is known yet: the stack builds this checkout.
      image: 'build',
      size: 'e2-small',
      dataDiskSizeGb: 10,
      alertEmail: 'ops@example.com',
      acme: { email: 'ops@example.com', directory: 'https://acme-v02.api.letsencrypt.org/directory', letsEncrypt: true },
      allowedDomains: [],
      adminSourceRanges: [],
      rebootTime: '04:00',
      gcp: { project: 'my-project', zone: 'europe-west1-b', region: 'europe-west1' },
    });
    expect(c.token).toBeUndefined();
    expect(c.webhook).toBeUndefined();
  });

  test('the published image is named after this checkout\'s release; it is the default once published (by digest), build until then', () => {
    const version = require('../../bridge/package.json').version as string;
    expect(DEFAULT_IMAGE).toBe(`ghcr.io/scim-bridge/scim-bridge:${version}`);
    expect(parse({}).image).toBe(defaultImage());
    expect(defaultImage(version, { [version]: `sha256:${'c'.repeat(64)}` })).toBe(`${DEFAULT_IMAGE}@sha256:${'c'.repeat(64)}`);
  });

  test('Let\'s Encrypt staging, a private ACME directory with its root, and acmeEmail', () => {
    expect(parse({ 'scim-bridge:acmeCa': 'staging' }).acme.directory).toBe('https://acme-staging-v02.api.letsencrypt.org/directory');
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';
    const c = parse({ 'scim-bridge:acmeCa': 'https://ca.internal:14000/dir', 'scim-bridge:acmeCaRoot': pem, 'scim-bridge:acmeEmail': 'pki@example.com' });
    expect(c.acme).toEqual({ email: 'pki@example.com', directory: 'https://ca.internal:14000/dir', letsEncrypt: false, caRoot: pem });
  });

  test('rebootTime: a time of day (UTC) or never', () => {
    expect(parse({ 'scim-bridge:rebootTime': '23:59' }).rebootTime).toBe('23:59');
    expect(parse({ 'scim-bridge:rebootTime': 'never' }).rebootTime).toBe('never');
  });

  test('lists as YAML lists (JSON in config) or comma-separated', () => {
    expect(parse({ 'scim-bridge:allowedDomains': '["example.com","Example.org"]' }).allowedDomains).toEqual(['example.com', 'example.org']);
    expect(parse({ 'scim-bridge:allowedDomains': 'example.com, example.org' }).allowedDomains).toEqual(['example.com', 'example.org']);
    expect(parse({ 'scim-bridge:adminSourceRanges': '["203.0.113.0/24","2001:db8::/48"]' }).adminSourceRanges).toEqual(['203.0.113.0/24', '2001:db8::/48']);
  });

  test('a webhook with its secret, and a configured token, come out as secrets', async () => {
    const c = parse(
      { 'scim-bridge:webhookUrl': 'https://app.example.com/hooks/scim', 'scim-bridge:webhookSecret': 'a'.repeat(32), 'scim-bridge:token': 't'.repeat(40) },
      ['scim-bridge:webhookSecret', 'scim-bridge:token'],
    );
    expect(c.webhook?.url).toBe('https://app.example.com/hooks/scim');
    expect(await pulumi.isSecret(c.webhook!.secret)).toBe(true);
    expect(await pulumi.isSecret(c.token!)).toBe(true);
  });
});

describe('each rule names the key and the fix', () => {
  test.each([
    ['target missing', { 'scim-bridge:target': undefined }, /^scim-bridge:target is not set: .*pulumi config set target gcp$/],
    ['target unknown', { 'scim-bridge:target': 'azure' }, /^scim-bridge:target "azure" is not a target; use one of gcp/],
    ['domain missing', { 'scim-bridge:domain': undefined }, /^scim-bridge:domain is not set: .*pulumi config set domain scim\.example\.com$/],
    ['domain with a scheme', { 'scim-bridge:domain': 'https://scim.example.com' }, /^scim-bridge:domain "https:\/\/scim\.example\.com" has a scheme; give the host name only: pulumi config set domain scim\.example\.com$/],
    ['domain with a trailing slash', { 'scim-bridge:domain': 'scim.example.com/' }, /"scim\.example\.com\/" has a path or a trailing slash; give the host name only/],
    ['domain with a path', { 'scim-bridge:domain': 'scim.example.com/scim/v2' }, /has a path or a trailing slash/],
    ['domain with a port', { 'scim-bridge:domain': 'scim.example.com:8443' }, /has a port; the bridge is served on 443/],
    ['domain with a trailing dot', { 'scim-bridge:domain': 'scim.example.com.' }, /ends with a dot; leave it out/],
    ['domain in capitals', { 'scim-bridge:domain': 'SCIM.example.com' }, /has capitals; use lower case/],
    ['domain without a dot', { 'scim-bridge:domain': 'scim' }, /is not a fully qualified name/],
    ['domain as an IP address', { 'scim-bridge:domain': '203.0.113.7' }, /is an IP address; Let's Encrypt needs a DNS name/],
    ['domain wildcard', { 'scim-bridge:domain': '*.example.com' }, /is a wildcard/],
    ['domain with a bad label', { 'scim-bridge:domain': 'scim_bridge.example.com' }, /has an invalid label "scim_bridge"/],
    ['dnsZone missing', { 'scim-bridge:dnsZone': undefined }, /^scim-bridge:dnsZone is not set: the existing Cloud DNS managed zone \(its name\): pulumi config set dnsZone example-com$/],
    ['dnsZone given as a DNS name', { 'scim-bridge:dnsZone': 'example.com' }, /^scim-bridge:dnsZone "example\.com" is not a Cloud DNS managed zone name; give the zone's name .*like example-com/],
    ['image without a tag', { 'scim-bridge:image': 'ghcr.io/acme/scim-bridge' }, /^scim-bridge:image "ghcr\.io\/acme\/scim-bridge" has no tag; pin a version/],
    ['image on latest', { 'scim-bridge:image': 'ghcr.io/acme/scim-bridge:latest' }, /is pinned to "latest", which moves; pin a version or a digest/],
    ['image not a reference', { 'scim-bridge:image': 'not an image' }, /is not an image reference/],
    ['caddyImage on latest', { 'scim-bridge:caddyImage': 'caddy:latest' }, /^scim-bridge:caddyImage "caddy:latest" is pinned to "latest"/],
    ['size', { 'scim-bridge:size': 'E2 Small' }, /^scim-bridge:size "E2 Small" is not a machine type name \(like e2-small\)$/],
    ['dataDiskSizeGb too small', { 'scim-bridge:dataDiskSizeGb': '5' }, /^scim-bridge:dataDiskSizeGb "5" must be a whole number of GB from 10 to 65536$/],
    ['dataDiskSizeGb not a number', { 'scim-bridge:dataDiskSizeGb': 'ten' }, /^scim-bridge:dataDiskSizeGb "ten" must be a whole number/],
    ['alertEmail missing', { 'scim-bridge:alertEmail': undefined }, /^scim-bridge:alertEmail is not set: who is told when the bridge is down: pulumi config set alertEmail ops@example\.com$/],
    ['alertEmail invalid', { 'scim-bridge:alertEmail': 'ops at example' }, /^scim-bridge:alertEmail "ops at example" is not an email address$/],
    ['acmeEmail invalid', { 'scim-bridge:acmeEmail': 'nobody' }, /^scim-bridge:acmeEmail "nobody" is not an email address$/],
    ['acmeCa not a URL', { 'scim-bridge:acmeCa': 'letsencrypt' }, /^scim-bridge:acmeCa "letsencrypt" must be production, staging or the https URL of an ACME directory$/],
    ['acmeCa over http', { 'scim-bridge:acmeCa': 'http://ca.internal/dir' }, /must be production, staging or the https URL/],
    ['acmeCaRoot not PEM', { 'scim-bridge:acmeCa': 'https://ca.internal/dir', 'scim-bridge:acmeCaRoot': 'abc' }, /^scim-bridge:acmeCaRoot must be a PEM certificate/],
    ['acmeCaRoot with Let\'s Encrypt', { 'scim-bridge:acmeCaRoot': '-----BEGIN CERTIFICATE-----' }, /is only for a private ACME directory; Let's Encrypt needs none: pulumi config rm acmeCaRoot/],
    ['allowedDomains entry', { 'scim-bridge:allowedDomains': 'example.com,@example.org' }, /^scim-bridge:allowedDomains entry "@example\.org" has an invalid label/],
    ['allowedDomains not strings', { 'scim-bridge:allowedDomains': '[1,2]' }, /^scim-bridge:allowedDomains must be a list of strings$/],
    ['webhookUrl over http', { 'scim-bridge:webhookUrl': 'http://app.example.com/hook', 'scim-bridge:webhookSecret': 'x'.repeat(32) }, /^scim-bridge:webhookUrl "http:\/\/app\.example\.com\/hook" must be an https URL$/, ['scim-bridge:webhookSecret']],
    ['webhookUrl with credentials', { 'scim-bridge:webhookUrl': 'https://u:p@app.example.com/hook', 'scim-bridge:webhookSecret': 'x'.repeat(32) }, /^scim-bridge:webhookUrl carries credentials; remove them from the URL/, ['scim-bridge:webhookSecret']],
    ['webhookUrl without its secret', { 'scim-bridge:webhookUrl': 'https://app.example.com/hook' }, /^scim-bridge:webhookSecret is not set but webhookUrl is: pulumi config set --secret webhookSecret/],
    ['webhookSecret without a URL', { 'scim-bridge:webhookSecret': 'x'.repeat(32) }, /^scim-bridge:webhookUrl is not set but webhookSecret is/, ['scim-bridge:webhookSecret']],
    ['webhookSecret in clear', { 'scim-bridge:webhookUrl': 'https://app.example.com/hook', 'scim-bridge:webhookSecret': 'x'.repeat(32) }, /^scim-bridge:webhookSecret is stored in clear in the stack file: pulumi config set --secret webhookSecret <value>$/],
    ['webhookSecret too short', { 'scim-bridge:webhookUrl': 'https://app.example.com/hook', 'scim-bridge:webhookSecret': 'short' }, /^scim-bridge:webhookSecret must be at least 16 characters/, ['scim-bridge:webhookSecret']],
    ['token in clear', { 'scim-bridge:token': 't'.repeat(40) }, /^scim-bridge:token is stored in clear in the stack file: pulumi config set --secret token/],
    ['token too short', { 'scim-bridge:token': 'hunter2' }, /^scim-bridge:token must be at least 32 characters with no spaces .*or remove it to have one generated$/, ['scim-bridge:token']],
    ['rebootTime not a time', { 'scim-bridge:rebootTime': '4am' }, /^scim-bridge:rebootTime "4am" must be a time of day in UTC as HH:MM \(like 04:00\), or never to leave kernel updates waiting for the next replacement$/],
    ['rebootTime out of range', { 'scim-bridge:rebootTime': '24:00' }, /^scim-bridge:rebootTime "24:00" must be a time of day/],
    ['adminSourceRanges open to the world', { 'scim-bridge:adminSourceRanges': '0.0.0.0/0' }, /^scim-bridge:adminSourceRanges entry "0\.0\.0\.0\/0" opens SSH to the whole internet; name your admin ranges/],
    ['adminSourceRanges IPv6 world', { 'scim-bridge:adminSourceRanges': '::/0' }, /entry "::\/0" opens SSH to the whole internet/],
    ['adminSourceRanges not a range', { 'scim-bridge:adminSourceRanges': '203.0.113.7' }, /entry "203\.0\.113\.7" is not a CIDR range \(like 203\.0\.113\.0\/24\)$/],
    ['adminSourceRanges bad octet', { 'scim-bridge:adminSourceRanges': '300.0.113.0/24' }, /is not a valid IPv4 CIDR range/],
    ['gcp:project missing', { 'gcp:project': undefined }, /^gcp:project is not set: the GCP project to deploy in: pulumi config set gcp:project my-project-id$/],
    ['zone missing', { 'scim-bridge:zone': undefined }, /^scim-bridge:zone is not set: the GCP zone for the host: pulumi config set zone europe-west1-b$/],
    ['zone given as a region', { 'scim-bridge:zone': 'europe-west1' }, /^scim-bridge:zone "europe-west1" is not a GCP zone \(like europe-west1-b; a region such as europe-west1 is not enough\)$/],
    ['dataDiskImport on gcp not a disk name', { 'scim-bridge:dataDiskImport': 'projects/p/zones/z/disks/d' }, /^scim-bridge:dataDiskImport "projects\/p\/zones\/z\/disks\/d" is not the disk's name \(gcloud compute disks list --filter=labels\.app=scim-bridge\)$/],
    ['unknown key with a suggestion', { 'scim-bridge:Domain': 'x' }, /^scim-bridge:Domain is not a setting of scim-bridge; did you mean scim-bridge:domain\?/],
    ['unknown key', { 'scim-bridge:colour': 'blue' }, /^scim-bridge:colour is not a setting of scim-bridge \(known: target, domain/],
  ] as Array<[string, Record<string, string | undefined>, RegExp, string[]?]>)('%s', (_name, values, pattern, secrets = []) => {
    // (a default keeps the callback's arity at 3: jest would take a fourth parameter for `done`)
    expectOne(values, pattern, secrets);
  });

  test('all problems come together, one line each', () => {
    const found = problems({ 'scim-bridge:domain': 'https://x.example.com/', 'scim-bridge:alertEmail': undefined, 'scim-bridge:zone': 'nowhere' });
    expect(found).toHaveLength(3);
    expect(found.map((p) => p.split(' ')[0])).toEqual(['scim-bridge:domain', 'scim-bridge:alertEmail', 'scim-bridge:zone']);
    expect(new StackConfigError(found).message.split('\n')).toEqual(found);
  });

  test('other namespaces (the providers\' own keys) are not ours to judge', () => {
    expect(() => parse({ 'gcp:region': 'europe-west1', 'aws:region': 'eu-west-1' })).not.toThrow();
  });
});

describe('digitalocean and aws settings', () => {
  const DO = {
    'gcp:project': undefined,
    'scim-bridge:zone': undefined,
    'scim-bridge:target': 'digitalocean',
    'scim-bridge:dnsZone': 'example.com',
    'scim-bridge:region': 'fra1',
  };
  const AWS = {
    'gcp:project': undefined,
    'scim-bridge:zone': undefined,
    'scim-bridge:target': 'aws',
    'aws:region': 'eu-west-1',
    'scim-bridge:dnsZone': 'Z0123456789ABCDEFGHIJ',
  };

  test('good values come out typed, with each target\'s default size', () => {
    expect(parse(DO)).toMatchObject({ target: 'digitalocean', size: 's-1vcpu-1gb', dnsZone: 'example.com', digitalocean: { region: 'fra1' } });
    expect(parse(AWS)).toMatchObject({ target: 'aws', size: 't3.small', aws: { region: 'eu-west-1', availabilityZone: 'eu-west-1a' } });
    expect(parse({ ...AWS, 'scim-bridge:availabilityZone': 'eu-west-1c' }).aws).toEqual({ region: 'eu-west-1', availabilityZone: 'eu-west-1c' });
    expect(parse({ ...AWS, 'scim-bridge:dnsZone': 'example.com' }).dnsZone).toBe('example.com');
    expect(parse({ ...DO, 'scim-bridge:domain': 'example.com' }).domain).toBe('example.com');
    expect(parse({ ...DO, 'scim-bridge:sshKeys': '["1234567","3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"]' }).digitalocean).toEqual({
      region: 'fra1',
      sshKeys: ['1234567', '3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa'],
    });
  });

  test.each([
    ['digitalocean region missing', { ...DO, 'scim-bridge:region': undefined }, /^scim-bridge:region is not set: the DigitalOcean region for the Droplet and its volume: pulumi config set region fra1$/],
    ['digitalocean region not a slug', { ...DO, 'scim-bridge:region': 'Frankfurt' }, /^scim-bridge:region "Frankfurt" is not a DigitalOcean region slug \(like fra1, nyc3, sgp1\)$/],
    ['digitalocean dnsZone missing', { ...DO, 'scim-bridge:dnsZone': undefined }, /^scim-bridge:dnsZone is not set: the existing DigitalOcean domain \(Networking > Domains\): pulumi config set dnsZone example\.com$/],
    ['digitalocean dnsZone not containing the domain', { ...DO, 'scim-bridge:dnsZone': 'example.org' }, /^scim-bridge:dnsZone "example\.org" does not contain the domain scim\.example\.com; give the zone the domain's record goes in$/],
    ['digitalocean dnsZone with a scheme', { ...DO, 'scim-bridge:dnsZone': 'https://example.com' }, /^scim-bridge:dnsZone "https:\/\/example\.com" has a scheme/],
    ['zone on digitalocean', { ...DO, 'scim-bridge:zone': 'europe-west1-b' }, /^scim-bridge:zone applies to gcp only; remove it: pulumi config rm zone$/],
    ['aws:region missing', { ...AWS, 'aws:region': undefined }, /^aws:region is not set: the AWS region to deploy in: pulumi config set aws:region eu-west-1$/],
    ['aws:region invalid', { ...AWS, 'aws:region': 'ireland' }, /^aws:region "ireland" is not an AWS region \(like eu-west-1\)$/],
    ['availabilityZone of another region', { ...AWS, 'scim-bridge:availabilityZone': 'us-east-1a' }, /^scim-bridge:availabilityZone "us-east-1a" is not an availability zone of eu-west-1 \(like eu-west-1a\)$/],
    ['aws dnsZone neither an id nor a name', { ...AWS, 'scim-bridge:dnsZone': 'zone 1' }, /^scim-bridge:dnsZone "zone 1" .*\(give the hosted zone's id, like Z0123456789ABCDEFGHIJ, or its domain name\)$/],
    ['aws dnsZone by a name not containing the domain', { ...AWS, 'scim-bridge:dnsZone': 'example.net' }, /does not contain the domain scim\.example\.com/],
    ['sshKeys entry neither an id nor a fingerprint', { ...DO, 'scim-bridge:sshKeys': '["ssh-ed25519 AAAA"]' }, /^scim-bridge:sshKeys entry "ssh-ed25519 AAAA" is not a key id or an MD5 fingerprint \(doctl compute ssh-key list\)$/],
    ['dataDiskImport on digitalocean not a volume id', { ...DO, 'scim-bridge:dataDiskImport': 'vol-0123456789abcdef0' }, /^scim-bridge:dataDiskImport "vol-0123456789abcdef0" is not the volume's id \(doctl compute volume list\)$/],
    ['dataDiskImport on aws not a volume id', { ...AWS, 'scim-bridge:dataDiskImport': 'my-disk' }, /^scim-bridge:dataDiskImport "my-disk" is not the volume's id, vol-… \(aws ec2 describe-volumes\)$/],
    ['sshKeys on aws', { ...AWS, 'scim-bridge:sshKeys': '123' }, /^scim-bridge:sshKeys applies to digitalocean only/],
    ['region on aws', { ...AWS, 'scim-bridge:region': 'fra1' }, /^scim-bridge:region applies to digitalocean only; remove it: pulumi config rm region$/],
    ['availabilityZone on gcp', { 'scim-bridge:availabilityZone': 'eu-west-1a' }, /^scim-bridge:availabilityZone applies to aws only/],
  ] as Array<[string, Record<string, string | undefined>, RegExp]>)('%s', (_name, values, pattern) => {
    expectOne(values, pattern);
  });
});
