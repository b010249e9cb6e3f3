/**
 * UPID encoding as in pve-common src/PVE/UPID.pm:
 * `UPID:node:pid:pstart:starttime:type:id:user:` with uppercase hex pid/pstart/starttime.
 */
export interface UpidParts {
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  user: string;
}

/** The decode regex from UPID.pm; pstart may have 9 hex digits on long-running hosts. */
export const UPID_RE =
  /^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$/;

const hex8 = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');

export function encodeUpid(p: UpidParts): string {
  return `UPID:${p.node}:${hex8(p.pid)}:${hex8(p.pstart)}:${hex8(p.starttime)}:${p.type}:${p.id}:${p.user}:`;
}

export function decodeUpid(upid: string): UpidParts | undefined {
  const m = UPID_RE.exec(upid);
  if (!m) return undefined;
  return {
    node: m[1]!,
    pid: parseInt(m[3]!, 16),
    pstart: parseInt(m[4]!, 16),
    starttime: parseInt(m[5]!, 16),
    type: m[6]!,
    id: m[7]!,
    user: m[8]!,
  };
}
