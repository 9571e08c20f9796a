/**
 * Policies 6-9, for the kubernetes target: pods under the restricted Pod Security profile (and a read-only root),
 * every container with resources set, no credential in clear in a container's environment, and a deny-by-default
 * NetworkPolicy in every namespace that runs a workload.
 */
import type { ReportViolation, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy } from '@pulumi/policy';
import { asArray, asStrings, byType, Checks, isObject, Props, T, Validator } from './common';

export const KUBERNETES_RESTRICTED_PODS = 'scim-bridge-kubernetes-restricted-pods';
export const KUBERNETES_RESOURCES_SET = 'scim-bridge-kubernetes-resources-set';
export const KUBERNETES_NO_SECRETS_IN_ENV = 'scim-bridge-kubernetes-no-secrets-in-env';
export const KUBERNETES_NETWORK_POLICY = 'scim-bridge-kubernetes-network-policy';

/** The pod template of a workload (or the pod itself), with the path to it for messages. */
function podSpecOf(type: string, props: Props): { spec: Props; at: string } | undefined {
  if (type === T.k8sPod) return isObject(props.spec) ? { spec: props.spec, at: 'spec' } : undefined;
  if (type === T.k8sCronJob) {
    const spec = props.spec?.jobTemplate?.spec?.template?.spec;
    return isObject(spec) ? { spec, at: 'spec.jobTemplate.spec.template.spec' } : undefined;
  }
  const spec = props.spec?.template?.spec;
  return isObject(spec) ? { spec, at: 'spec.template.spec' } : undefined;
}

function containersOf(pod: Props): Array<{ c: Props; at: string }> {
  return (['initContainers', 'containers', 'ephemeralContainers'] as const).flatMap((k) =>
    asArray(pod[k])
      .map((c, i) => ({ c: c as Props, at: `${k}[${i}]` }))
      .filter((x) => isObject(x.c)),
  );
}

const WORKLOADS = [T.k8sDeployment, T.k8sStatefulSet, T.k8sDaemonSet, T.k8sJob, T.k8sCronJob, T.k8sPod] as const;
function forWorkloads(check: (pod: Props, at: string, name: string, report: ReportViolation) => void): Record<string, Validator> {
  return Object.fromEntries(
    WORKLOADS.map((type) => [
      type,
      ((props, name, report) => {
        const pod = podSpecOf(type, props);
        if (!pod) report(`${name}: has no pod template (${type === T.k8sPod ? 'spec' : 'spec.template.spec'}) to check.`);
        else check(pod.spec, pod.at, name, report);
      }) as Validator,
    ]),
  );
}

const RESTRICTED_FIX = 'the namespace enforces Pod Security "restricted" (pod-security.kubernetes.io/enforce), which refuses such a pod';

function restrictedPod(pod: Props, at: string, name: string, report: ReportViolation): void {
  const checks = new Checks();
  const podContext = isObject(pod.securityContext) ? pod.securityContext : {};
  for (const host of ['hostNetwork', 'hostPID', 'hostIPC'] as const) checks.run(() => pod[host] === true && report(`${name}: ${at}.${host} is true; ${RESTRICTED_FIX}.`));
  checks.run(() =>
    asArray(pod.volumes).forEach((v, i) => {
      if (isObject(v) && v.hostPath !== undefined) report(`${name}: ${at}.volumes[${i}] mounts a hostPath; ${RESTRICTED_FIX}: use an emptyDir or a PersistentVolumeClaim.`);
    }),
  );
  for (const { c, at: where } of containersOf(pod)) {
    const path = `${at}.${where}`;
    const context = isObject(c.securityContext) ? c.securityContext : {};
    checks.run(() => {
      if (context.privileged === true) report(`${name}: ${path} is privileged; ${RESTRICTED_FIX}.`);
    });
    checks.run(() => {
      if (context.allowPrivilegeEscalation !== false) report(`${name}: ${path}.securityContext.allowPrivilegeEscalation must be false (it defaults to true); ${RESTRICTED_FIX}.`);
    });
    checks.run(() => {
      const nonRoot = context.runAsNonRoot ?? podContext.runAsNonRoot;
      if (nonRoot !== true) report(`${name}: ${path} may run as root: set runAsNonRoot: true (on the pod or the container); ${RESTRICTED_FIX}.`);
      const uid = context.runAsUser ?? podContext.runAsUser;
      if (uid === 0) report(`${name}: ${path} runs as uid 0; ${RESTRICTED_FIX}.`);
    });
    checks.run(() => {
      const seccomp = (isObject(context.seccompProfile) ? context.seccompProfile : podContext.seccompProfile) as Props | undefined;
      if (!isObject(seccomp) || !['RuntimeDefault', 'Localhost'].includes(String(seccomp.type))) {
        report(`${name}: ${path} has no seccomp profile: set seccompProfile.type RuntimeDefault (on the pod or the container); ${RESTRICTED_FIX}.`);
      }
    });
    checks.run(() => {
      const caps = isObject(context.capabilities) ? context.capabilities : {};
      if (!asStrings(caps.drop).includes('ALL')) report(`${name}: ${path}.securityContext.capabilities.drop must include ALL; ${RESTRICTED_FIX}.`);
      const added = asStrings(caps.add).filter((cap) => cap !== 'NET_BIND_SERVICE');
      if (added.length) report(`${name}: ${path} adds capabilities ${added.join(', ')}; only NET_BIND_SERVICE may be added; ${RESTRICTED_FIX}.`);
    });
    checks.run(() => {
      // Beyond "restricted": the bridge writes only to its volumes, so nothing that runs it may change its code.
      if (context.readOnlyRootFilesystem !== true) report(`${name}: ${path}.securityContext.readOnlyRootFilesystem must be true: give what must be written an emptyDir (like /tmp) or a volume.`);
    });
  }
  checks.done();
}

function restrictedNamespace(props: Props, name: string, report: ReportViolation): void {
  const labels = isObject(props.metadata?.labels) ? props.metadata.labels : {};
  if (labels['pod-security.kubernetes.io/enforce'] !== 'restricted') {
    report(`${name}: the namespace must enforce Pod Security "restricted": label it pod-security.kubernetes.io/enforce=restricted.`);
  }
}

export const kubernetesRestrictedPods: ResourceValidationPolicy = {
  name: KUBERNETES_RESTRICTED_PODS,
  description:
    'Kubernetes: every namespace enforces Pod Security "restricted", and every pod meets it: non-root, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp, no host namespaces or hostPath; and a read-only root filesystem.',
  enforcementLevel: 'mandatory',
  validateResource: byType({ [T.k8sNamespace]: restrictedNamespace, ...forWorkloads(restrictedPod) }),
};

function resourcesSet(pod: Props, at: string, name: string, report: ReportViolation): void {
  const checks = new Checks();
  for (const { c, at: where } of containersOf(pod)) {
    if (where.startsWith('ephemeralContainers')) continue;
    checks.run(() => {
      const r = isObject(c.resources) ? c.resources : {};
      const requests = isObject(r.requests) ? r.requests : {};
      const limits = isObject(r.limits) ? r.limits : {};
      const missing = [
        ...(requests.cpu === undefined ? ['requests.cpu'] : []),
        ...(requests.memory === undefined ? ['requests.memory'] : []),
        ...(limits.memory === undefined ? ['limits.memory'] : []),
      ];
      if (missing.length) report(`${name}: ${at}.${where}.resources has no ${missing.join(', ')}: the scheduler places it blind and nothing bounds its memory.`);
    });
  }
  checks.done();
}

export const kubernetesResourcesSet: ResourceValidationPolicy = {
  name: KUBERNETES_RESOURCES_SET,
  description: 'Kubernetes: every container requests CPU and memory and has a memory limit, so it is scheduled where it fits and cannot starve its neighbours.',
  enforcementLevel: 'mandatory',
  validateResource: byType(forWorkloads(resourcesSet)),
};

/** Names of variables that hold a credential when given in clear (their _FILE forms and hashes are fine). */
const SECRET_NAME = /(TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE_KEY|ACCESS_KEY|CREDENTIALS?)$/;
/**
 * A URL with a password in it (scheme://user:password@host, or ?password=…), whatever the variable's name: a
 * database URL is a credential when it carries one (PostgreSQL's), not when it is a path (SQLite's).
 */
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/([^/\s:@]+:[^/\s@]+@|[^\s]*[?&]password=)/i;

function noSecretsInEnv(pod: Props, at: string, name: string, report: ReportViolation): void {
  const checks = new Checks();
  for (const { c, at: where } of containersOf(pod)) {
    asArray(c.env).forEach((e, i) =>
      checks.run(() => {
        if (!isObject(e) || typeof e.value !== 'string' || e.value === '') return;
        const variable = String(e.name);
        if (SECRET_NAME.test(variable) || URL_WITH_PASSWORD.test(e.value)) {
          report(
            `${name}: ${at}.${where}.env[${i}] gives ${variable} in clear in the pod's spec (readable by anyone who can read the workload): ` +
              `mount it from a Secret as a file and set ${variable}_FILE, or use valueFrom.secretKeyRef.`,
          );
        }
      }),
    );
  }
  checks.done();
}

export const kubernetesNoSecretsInEnv: ResourceValidationPolicy = {
  name: KUBERNETES_NO_SECRETS_IN_ENV,
  description:
    "Kubernetes: no credential (a token, a secret, a password, a database URL with its password) in clear in a container's environment: it belongs in a Secret, mounted as a file (the bridge's _FILE settings).",
  enforcementLevel: 'mandatory',
  validateResource: byType(forWorkloads(noSecretsInEnv)),
};

/** Whether a NetworkPolicy selects every pod of its namespace and denies both directions by default. */
function deniesByDefault(props: Props): boolean {
  const spec = isObject(props.spec) ? props.spec : {};
  const selector = isObject(spec.podSelector) ? spec.podSelector : undefined;
  const everyPod = selector !== undefined && Object.keys(selector).every((k) => (isObject(selector[k]) ? Object.keys(selector[k]).length === 0 : asArray(selector[k]).length === 0));
  const types = asStrings(spec.policyTypes);
  return everyPod && types.includes('Ingress') && types.includes('Egress') && asArray(spec.ingress).length === 0 && asArray(spec.egress).length === 0;
}

export const kubernetesNetworkPolicy: StackValidationPolicy = {
  name: KUBERNETES_NETWORK_POLICY,
  description:
    'Kubernetes: every namespace that runs a workload has a NetworkPolicy that selects all its pods and allows nothing in or out, so only what another policy allows (the ingress controller in, DNS, the database and the webhook out) passes.',
  enforcementLevel: 'mandatory',
  validateStack: (args: StackValidationArgs, report: ReportViolation) => {
    const namespaceOf = (props: Props) => String(props.metadata?.namespace ?? 'default');
    const denied = new Set(args.resources.filter((r) => r.type === T.k8sNetworkPolicy && deniesByDefault(r.props)).map((r) => namespaceOf(r.props)));
    for (const r of args.resources) {
      if (!(WORKLOADS as readonly string[]).includes(r.type)) continue;
      const namespace = namespaceOf(r.props);
      if (!denied.has(namespace)) {
        report(`${r.name}: its namespace ${namespace} has no deny-by-default NetworkPolicy (podSelector {}, policyTypes Ingress and Egress, no rules): every pod could reach and be reached by anything in the cluster.`, r.urn);
      }
    }
  },
};
