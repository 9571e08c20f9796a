/**
 * The Caddyfile a VM host runs in front of the bridge: HTTPS from an ACME CA (Let's Encrypt by default) on
 * 80/443, certificates and the ACME account kept in `storageDir` (on the data disk, so a replaced host reuses
 * them and orders nothing), and a reverse proxy to the bridge on loopback.
 */
export interface CaddyOptions {
  /** The bridge's host name, e.g. scim.example.com. */
  domain: string;
  /** Where the bridge listens, e.g. 127.0.0.1:8080. */
  upstream: string;
  /** The ACME account's contact (expiry warnings from Let's Encrypt go there). */
  acmeEmail: string;
  /** The ACME directory URL. */
  acmeDirectory: string;
  /** A PEM file with the root that signs the ACME directory's own HTTPS certificate (private CAs only). */
  acmeCaRootFile?: string;
  /** Certificates, keys and the ACME account. */
  storageDir: string;
  /** Ports Caddy serves HTTP (ACME HTTP-01 challenges, redirect) and HTTPS on: 80 and 443 on a host. */
  httpPort?: number;
  httpsPort?: number;
  /** Bind the site to this address only (tests bind 127.0.0.1); all interfaces when absent. */
  bind?: string;
  /** Caddy's admin endpoint: off on a host (nothing reloads Caddy there: the service restarts it). */
  admin?: string;
}

export { LETS_ENCRYPT } from '../settings';

/** Caddyfile tokens with spaces, quotes or braces must be quoted; none of ours should carry them. */
function token(value: string, what: string): string {
  if (!/^[^\s"{}#]+$/.test(value)) throw new Error(`Caddyfile: ${what} "${value}" cannot be written as one token`);
  return value;
}

export function renderCaddyfile(o: CaddyOptions): string {
  const global = [
    `\temail ${token(o.acmeEmail, 'ACME email')}`,
    `\tacme_ca ${token(o.acmeDirectory, 'ACME directory')}`,
    ...(o.acmeCaRootFile ? [`\tacme_ca_root ${token(o.acmeCaRootFile, 'ACME CA root file')}`] : []),
    `\tstorage file_system ${token(o.storageDir, 'storage directory')}`,
    `\tadmin ${o.admin ? token(o.admin, 'admin address') : 'off'}`,
    '\tskip_install_trust',
    ...(o.httpPort ? [`\thttp_port ${o.httpPort}`] : []),
    ...(o.httpsPort ? [`\thttps_port ${o.httpsPort}`] : []),
  ];
  const site = [
    ...(o.bind ? [`\tbind ${token(o.bind, 'bind address')}`] : []),
    // No access log here: the bridge logs every request itself, by path without the query string, so SCIM
    // filter values (email addresses) stay out of the logs.
    '\theader {',
    '\t\tStrict-Transport-Security "max-age=31536000"',
    '\t\t-Server',
    '\t}',
    // No request_body limit: the bridge answers an oversized body with its own SCIM 413 error, where a limit
    // here would cut the stream and turn it into a bare 502.
    `\treverse_proxy ${token(o.upstream, 'upstream')}`,
  ];
  return ['{', ...global, '}', '', `${token(o.domain, 'domain')} {`, ...site, '}', ''].join('\n');
}
