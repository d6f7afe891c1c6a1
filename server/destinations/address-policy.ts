import net from 'node:net';

/**
 * Where an account's own SSH destination may make the server connect. Without a rule, an
 * account holder could use the server to reach what only the server reaches (its loopback
 * services, the private network, the cloud metadata address) or to scan ports.
 *
 * A host name is resolved once, here; the connection then goes to the address that was
 * checked, so a name that resolves differently a moment later (DNS rebinding) changes nothing.
 */
export interface AddressPolicyConfig {
  /** Addresses, CIDR ranges or host names (`*.example.com` for a domain's names) an account may reach even when a default rule denies them. */
  allowHosts: string[];
  /** Addresses, CIDR ranges or host names no account may reach (wins over everything). */
  denyHosts: string[];
  /** With true, an account may reach only what allowHosts lists. */
  onlyAllowedHosts: boolean;
  /** Ports an account may connect to; empty: any. */
  allowPorts: number[];
}

/** Loopback, private, shared (CGNAT), link-local (cloud metadata), multicast and reserved ranges. */
export const DEFAULT_DENIED_RANGES = [
  '0.0.0.0/8', '127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16',
  '192.0.0.0/24', '198.18.0.0/15', '224.0.0.0/4', '240.0.0.0/4',
  '::/128', '::1/128', 'fc00::/7', 'fe80::/10', 'ff00::/8', '64:ff9b::/96', '64:ff9b:1::/48',
] as const;

export class AddressDeniedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AddressDeniedError';
  }
}

interface Rules { names: string[]; ranges: net.BlockList }

/** A rule is a CIDR range, an address, or a host name. */
export function ruleProblem(rule: string): string | null {
  const [addr, bits, extra] = rule.split('/');
  if (extra !== undefined) return `not an address, range or host name: ${rule}`;
  if (bits !== undefined) {
    const family = net.isIP(addr ?? '');
    const max = family === 4 ? 32 : family === 6 ? 128 : 0;
    if (!max || !/^\d{1,3}$/.test(bits) || Number(bits) > max) return `not a CIDR range: ${rule}`;
    return null;
  }
  if (net.isIP(rule)) return null;
  return /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/.test(rule) ? null : `not an address, range or host name: ${rule}`;
}

function compile(list: readonly string[]): Rules {
  const ranges = new net.BlockList();
  const names: string[] = [];
  for (const rule of list) {
    const [addr, bits] = rule.split('/');
    const family = net.isIP(addr ?? '');
    if (family && bits !== undefined) ranges.addSubnet(addr!, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
    else if (family) ranges.addAddress(addr!, family === 4 ? 'ipv4' : 'ipv6');
    else names.push(rule.toLowerCase().replace(/\.$/, ''));
  }
  return { names, ranges };
}

const nameMatches = (name: string, rules: Rules): boolean =>
  rules.names.some((r) => (r.startsWith('*.') ? name.endsWith(r.slice(1)) : name === r));

/**
 * ::ffff:10.0.0.1 (mapped) and ::10.0.0.1 (compatible) are checked as the IPv4 address they
 * name. (net.BlockList already matches IPv4 rules against mapped addresses in hex form; an
 * IPv6 range like ::ffff:0:0/96 would match every IPv4 address, so none is listed.)
 */
function canonical(raw: string): { address: string; type: 'ipv4' | 'ipv6' } {
  const address = raw.replace(/%.*$/, '');
  const mapped = /^::(?:ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return { address: mapped[1]!, type: 'ipv4' };
  return { address, type: net.isIP(address) === 4 ? 'ipv4' : 'ipv6' };
}

const inRanges = (a: { address: string; type: 'ipv4' | 'ipv6' }, rules: Rules): boolean => rules.ranges.check(a.address, a.type);

export class AddressPolicy {
  private readonly allow: Rules;
  private readonly deny: Rules;
  private readonly defaults = compile(DEFAULT_DENIED_RANGES);

  constructor(private readonly config: AddressPolicyConfig, private readonly lookup: (host: string) => Promise<string[]> = resolveAll) {
    this.allow = compile(config.allowHosts);
    this.deny = compile(config.denyHosts);
  }

  /**
   * The address to connect to for `host`:`port`, or an AddressDeniedError saying why none
   * may be used (for the provider's log: the account gets one generic message).
   */
  async resolve(host: string, port: number): Promise<string> {
    if (this.config.allowPorts.length > 0 && !this.config.allowPorts.includes(port)) {
      throw new AddressDeniedError(`port ${port} is not in accountDestinations.allowPorts`);
    }
    const name = host.toLowerCase().replace(/\.$/, '');
    const literal = net.isIP(host) !== 0;
    if (!literal && nameMatches(name, this.deny)) throw new AddressDeniedError(`${host} is in accountDestinations.denyHosts`);
    const nameAllowed = !literal && nameMatches(name, this.allow);
    let addresses: string[];
    try {
      addresses = literal ? [host] : await this.lookup(host);
    } catch (err) {
      throw new AddressDeniedError(`${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const reasons: string[] = [];
    for (const raw of addresses) {
      const a = canonical(raw);
      if (inRanges(a, this.deny)) { reasons.push(`${raw} is in accountDestinations.denyHosts`); continue; }
      if (nameAllowed || inRanges(a, this.allow)) return raw;
      if (this.config.onlyAllowedHosts) { reasons.push(`${raw} is not in accountDestinations.allowHosts`); continue; }
      if (inRanges(a, this.defaults)) { reasons.push(`${raw} is a loopback, private, link-local or reserved address`); continue; }
      return raw;
    }
    throw new AddressDeniedError(`${host}: ${reasons.join('; ') || 'no address'}`);
  }
}

/**
 * The resolver is loaded here, at the first name to resolve: loading node:dns sets up c-ares
 * (it reads the resolver's configuration files), which every CLI command paid through the
 * config's schema (ruleProblem) though only an account's SSH destination resolves names.
 */
async function resolveAll(host: string): Promise<string[]> {
  const { default: dns } = await import('node:dns/promises');
  return (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);
}
