/** Which identity provider is calling: for the request log, the metrics and the status page. */

/** The identity providers the bridge knows by their User-Agent (the same names as the request log's). */
const KNOWN_IDPS: readonly [RegExp, string][] = [
  [/okta/i, 'okta'],
  [/azure|entra|microsoft|aad/i, 'entra'],
  [/jumpcloud/i, 'jumpcloud'],
  [/google/i, 'google'],
  [/onelogin/i, 'onelogin'],
  [/rippling/i, 'rippling'],
];

/** Which identity provider is calling, from its User-Agent, for the request log. */
export function idpOf(userAgent: string | undefined, adscimVersion?: string): string {
  // Entra ID sends ADSCIMVersion; its User-Agent is not always telling.
  if (adscimVersion) return 'entra';
  if (!userAgent) return 'unknown';
  return KNOWN_IDPS.find(([re]) => re.test(userAgent))?.[1] ?? userAgent.slice(0, 40);
}

/** The caller as a metrics label: a known IdP, `other` or `unknown` (no User-Agent); never the header's own text. */
export function idpLabel(userAgent: string | undefined, adscimVersion?: string): string {
  return labelOfIdp(idpOf(userAgent, adscimVersion));
}

const KNOWN_NAMES = new Set(['unknown', ...KNOWN_IDPS.map(([, name]) => name)]);

/** idpLabel of what idpOf said (when the request log has it already). */
export function labelOfIdp(idp: string): string {
  return KNOWN_NAMES.has(idp) ? idp : 'other';
}

/** Every value idpLabel gives. */
export const IDP_LABELS: readonly string[] = [...new Set(KNOWN_IDPS.map(([, name]) => name)), 'other', 'unknown'];
