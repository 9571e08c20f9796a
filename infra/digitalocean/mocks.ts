/** What DigitalOcean computes for the resources the digitalocean target reads back, for the offline plan. */
import type { PlanMocks } from '../bridge';

/** A Droplet's id is a number; the plan's default `<name>-id` would not convert. */
const DROPLET_ID = '424242424';

export const digitalOceanPlanMocks: PlanMocks = {
  outputs(type, name, inputs) {
    switch (type) {
      // A registry login (a Docker config, its login base64 as DigitalOcean gives it), read-only or not: secrets the
      // plan cannot know. The push login is decoded by the program, so the leak check follows it; the pull login
      // stays base64 (tests follow it: test/infra/image-build.test.ts).
      case 'digitalocean:index/containerRegistryDockerCredentials:ContainerRegistryDockerCredentials': {
        const secret = `PLAN-SECRET-${inputs.write ? 'registryPushToken' : 'registryPullToken'}`.padEnd(40, '_');
        return { dockerCredentials: JSON.stringify({ auths: { 'registry.digitalocean.com': { auth: Buffer.from(`${secret}:${secret}`).toString('base64') } } }) };
      }
      case 'digitalocean:index/droplet:Droplet':
        return { id: DROPLET_ID, dropletUrn: `do:droplet:${DROPLET_ID}`, ipv4Address: '198.51.100.20' };
      case 'digitalocean:index/reservedIp:ReservedIp':
        return { ipAddress: '203.0.113.20', reservedIpUrn: 'do:reservedip:203.0.113.20' };
      case 'digitalocean:index/volume:Volume':
        return { volumeUrn: `do:volume:${name}-id` };
      case 'digitalocean:index/uptimeCheck:UptimeCheck':
        return { id: `${name}-check-id` };
      default:
        return undefined;
    }
  },
};
