/** What GCP computes for the resources the gcp target reads back, for the offline plan. */
import type { PlanMocks } from '../bridge';

export const gcpPlanMocks: PlanMocks = {
  outputs(type, name, inputs) {
    const project = (inputs.project as string) ?? 'plan-project';
    switch (type) {
      case 'gcp:compute/address:Address':
        return { address: '203.0.113.10' };
      case 'gcp:serviceaccount/account:Account':
        return { email: `${inputs.accountId}@${project}.iam.gserviceaccount.com` };
      case 'gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig':
        return { uptimeCheckId: `${name}-check-id` };
      case 'gcp:monitoring/notificationChannel:NotificationChannel':
        return { name: `projects/${project}/notificationChannels/${name}` };
      case 'gcp:secretmanager/secret:Secret':
        return { name: `projects/${project}/secrets/${inputs.secretId}` };
      // The wait after enabling the APIs (@pulumiverse/time): its id is the time it ended (RFC 3339).
      case 'time:index/sleep:Sleep':
        return { id: '2025-01-01T00:01:30Z' };
      default:
        return undefined;
    }
  },
  invoke(token) {
    // The provider's access token, which pushes the built image (a secret the plan cannot know).
    if (token === 'gcp:organizations/getClientConfig:getClientConfig') return { id: 'plan', project: 'plan-project', accessToken: 'PLAN-SECRET-registryPushToken'.padEnd(40, '_') };
    return undefined;
  },
};
