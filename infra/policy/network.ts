/**
 * Policy 1: nothing but tcp 80 and 443 is open to the world (0.0.0.0/0, ::/0, any /0 range).
 */
import type { ResourceValidationPolicy, ReportViolation } from '@pulumi/policy';
import { asArray, asStrings, byType, Checks, isObject, isTrue, isWorld, Props, T, Validator } from './common';

export const ONLY_HTTPS_OPEN = 'scim-bridge-only-https-open';
/** The only ports the world may reach: HTTPS for the IdP, HTTP for ACME challenges and the redirect. */
export const WORLD_PORTS = [80, 443] as const;

const FIX = 'Only tcp 80 and 443 may be open to 0.0.0.0/0 or ::/0: narrow the source to your admin ranges (scim-bridge:adminSourceRanges) or remove the rule.';

/** A port range [from, to], or "all" for every port (no ports given, "all", 0-65535, protocol -1…). */
type Ports = [number, number] | 'all';

/** Whether a tcp port range opens anything other than exactly 80 or exactly 443. */
function beyondHttps(ports: Ports): boolean {
  if (ports === 'all') return true;
  const [from, to] = ports;
  return !(from === to && (WORLD_PORTS as readonly number[]).includes(from));
}

function describePorts(ports: Ports): string {
  return ports === 'all' ? 'all ports' : ports[0] === ports[1] ? `port ${ports[0]}` : `ports ${ports[0]}-${ports[1]}`;
}

/** "80", "80-443", 8080, "all", "" → a range. Unparseable text counts as all ports (fail closed). */
function parsePorts(v: unknown): Ports {
  if (v === undefined || v === null || v === '') return 'all';
  if (typeof v === 'number') return v <= 0 ? 'all' : [v, v];
  const text = String(v).trim().toLowerCase();
  if (text === 'all' || text === '0' || text === '*') return 'all';
  const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(text);
  if (!m) return 'all';
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from === 0 && to >= 65535) return 'all';
  return [from, to];
}

/** tcp by name or number; every other protocol (udp, icmp, all, -1…) is not allowed towards the world. */
function isTcp(protocol: unknown): boolean {
  const p = String(protocol ?? '').trim().toLowerCase();
  return p === 'tcp' || p === '6';
}

interface Opening {
  protocol: unknown;
  ports: Ports;
  sources: string[];
  what: string;
}

function check(openings: Opening[], name: string, report: ReportViolation): void {
  for (const o of openings) {
    const world = o.sources.filter(isWorld);
    if (!world.length) continue;
    const proto = String(o.protocol ?? 'all').toLowerCase();
    if (!isTcp(o.protocol)) {
      const all = proto === 'all' || proto === '-1';
      report(`${name}: ${o.what} opens ${all ? 'every protocol and port' : `protocol ${proto}`} to ${world.join(', ')}. ${FIX}`);
    } else if (beyondHttps(o.ports)) {
      report(`${name}: ${o.what} opens tcp ${describePorts(o.ports)} to ${world.join(', ')}. ${FIX}`);
    }
  }
}

function gcpFirewall(props: Props, name: string, report: ReportViolation): void {
  const checks = new Checks();
  checks.run(() => {
    if (String(props.direction ?? 'INGRESS').toUpperCase() !== 'INGRESS' || isTrue(props.disabled)) return;
    let sources = asStrings(props.sourceRanges);
    let note = '';
    // GCP: an ingress rule with no source at all applies to every source, 0.0.0.0/0.
    if (!sources.length && !asArray(props.sourceTags).length && !asArray(props.sourceServiceAccounts).length) {
      sources = ['0.0.0.0/0'];
      note = ' (it names no source, so GCP applies it to 0.0.0.0/0)';
    }
    const openings: Opening[] = [];
    asArray(props.allows).forEach((allow, i) => {
      if (!isObject(allow)) return;
      const ports = asArray(allow.ports);
      const what = `allows[${i}]${note}`;
      if (!ports.length) openings.push({ protocol: allow.protocol, ports: 'all', sources, what });
      for (const p of ports) openings.push({ protocol: allow.protocol, ports: parsePorts(p), sources, what });
    });
    check(openings, name, report);
  });
  checks.done();
}

function doFirewall(props: Props, name: string, report: ReportViolation): void {
  const checks = new Checks();
  asArray(props.inboundRules).forEach((rule, i) =>
    checks.run(() => {
      if (!isObject(rule)) return;
      const protocol = rule.protocol;
      // DigitalOcean: icmp has no ports; tcp/udp without a range (or "all", "0") mean every port.
      check([{ protocol, ports: parsePorts(rule.portRange), sources: asStrings(rule.sourceAddresses), what: `inboundRules[${i}]` }], name, report);
    }),
  );
  checks.done();
}

/** AWS: protocol "-1" (or "all") is every protocol and port, whatever fromPort/toPort say. */
function awsPorts(protocol: unknown, from: unknown, to: unknown): Ports {
  const p = String(protocol ?? '').toLowerCase();
  if (p === '-1' || p === 'all') return 'all';
  if (typeof from !== 'number' || typeof to !== 'number') return 'all';
  if (from <= 0 && to >= 65535) return 'all';
  if (from === -1 || to === -1) return 'all';
  return [from, to];
}

function awsSecurityGroup(props: Props, name: string, report: ReportViolation): void {
  const checks = new Checks();
  asArray(props.ingress).forEach((rule, i) =>
    checks.run(() => {
      if (!isObject(rule)) return;
      const sources = [...asStrings(rule.cidrBlocks), ...asStrings(rule.ipv6CidrBlocks)];
      check([{ protocol: rule.protocol, ports: awsPorts(rule.protocol, rule.fromPort, rule.toPort), sources, what: `ingress[${i}]` }], name, report);
    }),
  );
  checks.done();
}

function awsSecurityGroupRule(props: Props, name: string, report: ReportViolation): void {
  if (String(props.type).toLowerCase() !== 'ingress') return;
  const sources = [...asStrings(props.cidrBlocks), ...asStrings(props.ipv6CidrBlocks)];
  check([{ protocol: props.protocol, ports: awsPorts(props.protocol, props.fromPort, props.toPort), sources, what: 'the ingress rule' }], name, report);
}

function awsIngressRule(props: Props, name: string, report: ReportViolation): void {
  const sources = asStrings([props.cidrIpv4, props.cidrIpv6]);
  check([{ protocol: props.ipProtocol, ports: awsPorts(props.ipProtocol, props.fromPort, props.toPort), sources, what: 'the ingress rule' }], name, report);
}

const VALIDATORS: Record<string, Validator> = {
  [T.gcpFirewall]: gcpFirewall,
  [T.doFirewall]: doFirewall,
  [T.awsSecurityGroup]: awsSecurityGroup,
  [T.awsSecurityGroupRule]: awsSecurityGroupRule,
  [T.awsIngressRule]: awsIngressRule,
};

export const onlyHttpsOpen: ResourceValidationPolicy = {
  name: ONLY_HTTPS_OPEN,
  description:
    'Nothing but tcp 80 and 443 is open to the world (0.0.0.0/0, ::/0 or any /0 range). Checks GCP firewalls (ingress allows, ' +
    'including rules with no source, which GCP applies to everyone), DigitalOcean firewalls (inbound rules), AWS security ' +
    'groups (inline ingress), aws.ec2.SecurityGroupRule (ingress) and aws.vpc.SecurityGroupIngressRule. Every other protocol, ' +
    'a missing port list, "all", protocol -1 and port ranges (0-65535, 80-443) count as more than 80/443. It does not judge ' +
    'narrower ranges (e.g. two /1 halves) nor rules created outside this stack.',
  enforcementLevel: 'mandatory',
  severity: 'high',
  validateResource: byType(VALIDATORS),
};
