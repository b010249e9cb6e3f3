// Proxmox task IDs (UPIDs): `UPID:node:pid:pstart:starttime:type:id:user:` (trailing colon).
// pid/pstart/starttime are upper-case hex, zero-padded to 8 digits; pstart may need 9. `id` may be
// empty (vzdump of several guests). A task started with an API token records `user@realm!token`.
// Format and regex follow pve-common `src/PVE/UPID.pm`. The simulator formats its task IDs with this
// module too, so what the client parses and what the simulator hands out cannot drift apart.

/** A UPID's syntax, for schemas that document it (isUpid tests the same). */
export const UPID_RE =
  /^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$/;

export interface Upid {
  node: string;
  pid: number;
  pstart: number;
  /** Task start as a UNIX epoch in seconds, as Proxmox reports it. */
  starttime: number;
  /** The same instant as a Date. */
  startedAt: Date;
  /** Task type, e.g. `qmstart`, `vzdump`. */
  type: string;
  /** Usually the vmid; may be empty. */
  id: string;
  /** `user@realm`, without the token part (as `tasks/{upid}/status` reports it). */
  user: string;
  /** The API token name when the task was started with a token. */
  tokenid?: string;
}

export function isUpid(value: unknown): value is string {
  return typeof value === 'string' && UPID_RE.test(value);
}

/** Decodes a UPID; returns undefined for anything that is not one. */
export function parseUpid(value: string): Upid | undefined {
  const m = UPID_RE.exec(value);
  if (!m) return undefined;
  const [, node, , pid, pstart, starttime, type, id, rawUser] = m as unknown as [
    string, string, string | undefined, string, string, string, string, string, string,
  ];
  const bang = rawUser.lastIndexOf('!');
  const start = parseInt(starttime, 16);
  const upid: Upid = {
    node,
    pid: parseInt(pid, 16),
    pstart: parseInt(pstart, 16),
    starttime: start,
    startedAt: new Date(start * 1000),
    type,
    id,
    user: bang === -1 ? rawUser : rawUser.slice(0, bang),
  };
  if (bang !== -1) upid.tokenid = rawUser.slice(bang + 1);
  return upid;
}

export type UpidParts = Omit<Upid, 'startedAt'>;

/** Builds a UPID the way Proxmox prints it. Throws if the result would not parse back. */
export function formatUpid(parts: UpidParts): string {
  const hex = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');
  const user = parts.tokenid === undefined ? parts.user : `${parts.user}!${parts.tokenid}`;
  const upid = `UPID:${parts.node}:${hex(parts.pid)}:${hex(parts.pstart)}:${hex(parts.starttime)}:${parts.type}:${parts.id}:${user}:`;
  if (!Number.isSafeInteger(parts.pid) || !Number.isSafeInteger(parts.pstart) || !Number.isSafeInteger(parts.starttime) || !isUpid(upid)) {
    throw new RangeError(`cannot format a valid UPID from these parts: ${JSON.stringify(parts)}`);
  }
  return upid;
}
