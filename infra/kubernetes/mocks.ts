/** What the cluster computes for the resources the kubernetes target reads back, for the offline plan. */
import type { PlanMocks } from '../bridge';

export const kubernetesPlanMocks: PlanMocks = {
  outputs(type) {
    switch (type) {
      // The ingress controller's load balancer, once it has admitted the Ingress.
      case 'kubernetes:networking.k8s.io/v1:Ingress':
        return { status: { loadBalancer: { ingress: [{ ip: '203.0.113.40' }] } } };
      default:
        return undefined;
    }
  },
};
