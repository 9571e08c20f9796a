/** The door to observation: metrics, the status report and the status page's files. */
export { Observer, STATS_MAX_AGE_MS, methodLabel } from './observer';
export type { ConnectorStatus, DeliveryBacklog, DirectoryCounts, ObserverOptions, ObserverSources, StatusReport } from './observer';
export { RECENT_ERRORS } from './activity';
export type { LastRequest, RecentError, RequestRecord } from './activity';
export { STATUS_CSS, STATUS_HTML, STATUS_ICON, STATUS_JS, STATUS_PAGE_CSP } from './status-page';
