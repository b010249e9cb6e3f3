// Public surface of the Proxmox VE API client. Import from here, not from the files behind it.

export { createProxmoxClient, type ProxmoxCallObservation, type ProxmoxClient, type ProxmoxEndpointOptions } from './client.js';
export * from './errors.js';
export { isStaleConfigError, mapHttpError, mapTransportError, type HttpFailure } from './error-map.js';
export { formatUpid, isUpid, parseUpid, type Upid, type UpidParts } from './upid.js';
export {
  fillPath,
  PROXMOX_ROUTES,
  type HttpMethod,
  type PathParams,
  type ProxmoxPathTemplate,
  type ProxmoxRouteMethod,
} from './paths.js';
export { encodeParams, type ProxmoxParams, type ProxmoxParamValue } from './params.js';
export { normalizeFingerprint, type ProxmoxTlsOptions } from './tls.js';
export {
  assertTaskOnNode,
  interpretExitStatus,
  isNoSuchTask,
  waitForTask,
  type CallOptions,
  type TaskReader,
  type TaskResult,
  type WaitForTaskOptions,
} from './tasks.js';
export type * from './types.js';
