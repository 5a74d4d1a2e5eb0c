/** The line a role process prints once it listens, and how the supervisor reads it back. */

type Addresses = { tcp?: string; http?: string; ws?: string };

/** `tcp=host:port http=host:port ws=ws://host:port/v1/ws`, as the ready line shows the addresses. */
export function formatAddresses(addresses: Addresses): string {
  return [
    addresses.tcp && `tcp=${addresses.tcp}`,
    addresses.http && `http=${addresses.http}`,
    addresses.ws && `ws=${addresses.ws}`,
  ]
    .filter(Boolean)
    .join(' ');
}

/** A ready line of a role process, parsed; undefined if the line is not one. */
export function parseReadyLine(
  line: string,
): { role: string; id: string; addresses: Addresses; pid?: number } | undefined {
  const m = /^ready (\S+) (\S+)((?: \w+=\S+)*)\s*$/.exec(line);
  if (!m) return undefined;
  const addresses: Addresses = {};
  let pid: number | undefined;
  for (const kv of m[3]!.trim().split(' ').filter(Boolean)) {
    const [k, v] = [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)];
    if (k === 'tcp' || k === 'http' || k === 'ws') addresses[k] = v;
    else if (k === 'pid') pid = Number(v);
  }
  return { role: m[1]!, id: m[2]!, addresses, pid };
}
