/** How the commands and views write figures and addresses. */

/** 512 B, 3.0 KiB, 48.2 MiB, 1.1 GiB */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** 42s, 3m12s, 2h05m, 3d04h */
export function duration(seconds: number): string {
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}

/** "tcp HOST:PORT  http HOST:PORT", of what a role has */
export function addressList(addresses: { tcp?: string; http?: string; ws?: string }): string {
  const parts: string[] = [];
  if (addresses.tcp) parts.push(`tcp ${addresses.tcp}`);
  if (addresses.http) parts.push(`http ${addresses.http}`);
  if (addresses.ws) parts.push(`ws ${addresses.ws}`);
  return parts.join('  ');
}
