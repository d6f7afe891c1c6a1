import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressDeniedError, AddressPolicy, type AddressPolicyConfig } from '../server/destinations/address-policy.js';
import { configSchema } from '../server/config-schema.js';

const rules = (over: Partial<AddressPolicyConfig> = {}): AddressPolicyConfig => ({ allowHosts: [], denyHosts: [], onlyAllowedHosts: false, allowPorts: [], ...over });
const denied = (p: Promise<unknown>, pattern?: RegExp): Promise<void> =>
  assert.rejects(p, (err: unknown) => err instanceof AddressDeniedError && (!pattern || pattern.test(err.message)));

test('regression: account destinations could reach loopback, private, link-local and reserved addresses in any spelling', async () => {
  const p = new AddressPolicy(rules(), async () => { throw new Error('no lookups for literals'); });
  for (const host of ['127.0.0.1', '10.0.0.5', '172.16.3.4', '192.168.1.1', '100.64.0.1', '169.254.169.254', '0.0.0.0', '224.0.0.1',
    '255.255.255.255', '::1', '::', 'fe80::1', 'fd12:3456::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a00:1', '::127.0.0.1', '64:ff9b::a00:1']) {
    await denied(p.resolve(host, 22), /loopback, private, link-local or reserved/);
  }
  for (const host of ['8.8.8.8', '203.0.114.9', '2001:4860:4860::8888', '::ffff:8.8.8.8']) assert.equal(await p.resolve(host, 22), host);
});

test('a host name is resolved once and the address checked is the one returned (no DNS rebinding); a private answer is skipped', async () => {
  let lookups = 0;
  const answers = [['10.0.0.1', '93.184.216.34'], ['127.0.0.1']];
  const p = new AddressPolicy(rules(), async () => answers[lookups++]!);
  assert.equal(await p.resolve('rebind.example', 22), '93.184.216.34');
  assert.equal(lookups, 1, 'one lookup per connection');
  await denied(p.resolve('rebind.example', 22), /127\.0\.0\.1 is a loopback/);
  const failing = new AddressPolicy(rules(), async () => { throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' }); });
  await denied(failing.resolve('nowhere.example', 22), /does not resolve \(ENOTFOUND\)/);
});

test('the provider allows, denies and limits: allowHosts (addresses, ranges, names), denyHosts wins, onlyAllowedHosts, allowPorts', async () => {
  const lookup = async (h: string): Promise<string[]> => (h === 'nas.lan' ? ['192.168.1.20'] : h === 'x.bad.example' ? ['93.184.216.34'] : ['198.51.100.7']);
  const p = new AddressPolicy(rules({ allowHosts: ['10.1.0.0/16', 'nas.lan', 'fd00::5'], denyHosts: ['10.1.2.0/24', '*.bad.example'] }), lookup);
  assert.equal(await p.resolve('10.1.9.9', 22), '10.1.9.9');
  assert.equal(await p.resolve('nas.lan', 22), '192.168.1.20');
  assert.equal(await p.resolve('fd00::5', 22), 'fd00::5');
  await denied(p.resolve('10.1.2.3', 22), /denyHosts/);
  await denied(p.resolve('x.bad.example', 22), /denyHosts/);
  const only = new AddressPolicy(rules({ allowHosts: ['198.51.100.0/24'], onlyAllowedHosts: true }), lookup);
  assert.equal(await only.resolve('anything.example', 22), '198.51.100.7');
  await denied(only.resolve('8.8.8.8', 22), /not in accountDestinations\.allowHosts/);
  const ports = new AddressPolicy(rules({ allowPorts: [22, 2222] }), lookup);
  assert.equal(await ports.resolve('8.8.8.8', 2222), '8.8.8.8');
  await denied(ports.resolve('8.8.8.8', 25), /port 25 is not in accountDestinations\.allowPorts/);
});

test('the config rejects malformed host rules', () => {
  const parse = (accountDestinations: unknown) => configSchema.safeParse({ accountDestinations });
  assert.equal(parse({ allowHosts: ['10.0.0.0/8', 'nas.example.org', '*.example.org', '::1', 'fd00::/8'], denyHosts: ['1.2.3.4'], allowPorts: [22] }).success, true);
  for (const bad of [{ allowHosts: ['10.0.0.0/33'] }, { denyHosts: ['not a host'] }, { allowHosts: ['1.2.3.4/8/9'] }, { allowPorts: [0] }, { allowHosts: ['http://x'] }]) {
    assert.equal(parse(bad).success, false, JSON.stringify(bad));
  }
});
