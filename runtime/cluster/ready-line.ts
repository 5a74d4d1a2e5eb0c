/** The line a role process prints once it listens, and how the supervisor reads it back. */

/** `tcp=host:port http=host:port`, as the ready line shows the addresses. */
export function formatAddresses(addresses: { tcp?: string; http?: string }): string {
  return [addresses.tcp && `tcp=${addresses.tcp}`, addresses.http && `http=${addresses.http}`]
    .filter(Boolean)
    .join(' ');
}

/** A ready line of a role process, parsed; undefined if the line is not one. */
export function parseReadyLine(
  line: string,
): { role: string; id: string; addresses: { tcp?: string; http?: string }; pid?: number } | undefined {
  const m = /^ready (\S+) (\S+)((?: \w+=\S+)*)\s*$/.exec(line);
  if (!m) return undefined;
  const addresses: { tcp?: string; http?: string } = {};
  let pid: number | undefined;
  for (const kv of m[3]!.trim().split(' ').filter(Boolean)) {
    const [k, v] = [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)];
    if (k === 'tcp' || k === 'http') addresses[k] = v;
    else if (k === 'pid') pid = Number(v);
  }
  return { role: m[1]!, id: m[2]!, addresses, pid };
}
