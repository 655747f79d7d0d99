// The volumes and networks pages' pure logic: create bodies (checked as docker checks them),
// addressing and container counts from real API shapes, search, the in-use conflict.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  containersPerNetwork, FormError, inUseBy, isBuiltinNetwork, matches, networkAddressing, networkCreateBody, parseKeyValues, volumeCreateBody,
} from '../../src/webui/lib/resources.ts';

test('parseKeyValues: one per line, "=" in values kept, a bare key gets "", comments skipped', () => {
  assert.deepEqual(parseKeyValues('a=b\n# note\n\n c = d=e \nflag', 'label'), { a: 'b', c: ' d=e', flag: '' });
  assert.deepEqual(parseKeyValues(undefined, 'label'), {});
  assert.throws(() => parseKeyValues('=x', 'label'), /label "=x": the key is empty/);
});

test('volumeCreateBody: docker volume create\'s fields; the local driver\'s name rule', () => {
  assert.deepEqual(volumeCreateBody({ name: ' data ', labels: 'app=web', opts: 'type=tmpfs\ndevice=tmpfs' }), {
    Name: 'data', Driver: 'local', Labels: { app: 'web' }, DriverOpts: { type: 'tmpfs', device: 'tmpfs' },
  });
  assert.equal(volumeCreateBody({}).Name, undefined);
  assert.throws(() => volumeCreateBody({ name: 'bad/name' }), /includes invalid characters for a local volume name/);
  assert.throws(() => volumeCreateBody({ name: 'x' }), FormError);
});

test('networkCreateBody: IPAM from subnet and gateway; a gateway outside the subnet is refused', () => {
  assert.deepEqual(networkCreateBody({ name: 'app', subnet: '10.20.0.0/24', gateway: '10.20.0.1', internal: true, labels: 'team=ui' }), {
    Name: 'app', Driver: 'bridge', Internal: true, Attachable: false,
    IPAM: { Driver: 'default', Config: [{ Subnet: '10.20.0.0/24', Gateway: '10.20.0.1' }] }, Labels: { team: 'ui' },
  });
  assert.deepEqual((networkCreateBody({ name: 'plain' }) as { IPAM: unknown }).IPAM, { Driver: 'default', Config: [] });
  assert.throws(() => networkCreateBody({ name: ' ' }), /needs a name/);
  assert.throws(() => networkCreateBody({ name: 'n', gateway: '10.0.0.1' }), /needs a subnet/);
  assert.throws(() => networkCreateBody({ name: 'n', subnet: '10.0.0.0/33' }), /invalid subnet/);
  assert.throws(() => networkCreateBody({ name: 'n', subnet: '10.0.0.0/24', gateway: '10.0.1.1' }), /no matching subnet for gateway 10.0.1.1/);
  assert.throws(() => networkCreateBody({ name: 'n', subnet: '10.0.0.0/24', gateway: '10.0.0.300' }), /invalid gateway/);
  assert.throws(() => networkCreateBody({ name: 'n', subnet: '10.0.0.0/24', ipRange: '10.0.0.0/16' }), /not inside the subnet/);
  assert.equal((networkCreateBody({ name: 'v6', subnet: 'fd00::/64', gateway: 'fd00::1' }) as { IPAM: { Config: unknown[] } }).IPAM.Config.length, 1);
});

// Shapes as Berth answers GET /networks and GET /containers/json (captured from a daemon).
const bridge = {
  Name: 'bridge', Id: 'f9277b91fb02ed5b3485c32fcd4cf9dd112aaaa27125eac5d8d2d6af1b835153', Scope: 'local', Driver: 'bridge',
  IPAM: { Driver: 'default', Options: null, Config: [{ Subnet: '172.18.0.0/16', Gateway: '172.18.0.1' }] }, Internal: false, Containers: {},
};
const host = { Name: 'host', Id: 'e34bd057', Scope: 'local', Driver: 'host', IPAM: { Driver: 'default', Options: null, Config: [] }, Containers: {} };

test('networkAddressing and built-in networks', () => {
  assert.deepEqual(networkAddressing(bridge), [{ subnet: '172.18.0.0/16', gateway: '172.18.0.1' }]);
  assert.deepEqual(networkAddressing(host), []);
  assert.deepEqual(networkAddressing({ ...host, IPAM: { Config: null } }), []);
  assert.ok(isBuiltinNetwork('bridge') && isBuiltinNetwork('host') && isBuiltinNetwork('none'));
  assert.ok(!isBuiltinNetwork('bridge2'));
});

test('containersPerNetwork counts running containers by network id', () => {
  const containers: Array<{ NetworkSettings?: { Networks?: Record<string, { NetworkID?: string; IPAddress?: string }> } }> = [
    { NetworkSettings: { Networks: { bvnnet: { NetworkID: '3e27b9e4', IPAddress: '10.77.0.2' } } } },
    { NetworkSettings: { Networks: { bvnnet: { NetworkID: '3e27b9e4' }, bridge: { NetworkID: bridge.Id } } } },
    { NetworkSettings: { Networks: { legacy: {} } } },
    {},
  ];
  const m = containersPerNetwork(containers);
  assert.equal(m.get('3e27b9e4'), 2);
  assert.equal(m.get(bridge.Id), 1);
  assert.equal(m.get('legacy'), 1);
});

test('matches searches strings and labels, case-insensitively', () => {
  assert.ok(matches('WEB', 'bvn-data', 'local', { app: 'web' }));
  assert.ok(matches('app=w', 'x', { app: 'web' }));
  assert.ok(!matches('zzz', 'x', null, undefined, { app: 'web' }));
  assert.ok(matches('  ', 'anything'));
});

test('inUseBy reads the containers from dockerd\'s volume conflict message', () => {
  assert.deepEqual(inUseBy('remove inuse: volume is in use - [7d99be8eea81d3dcde370a1d77e93613c31a16e99dc3071bc47fcac992a7c126]'), ['7d99be8eea81d3dcde370a1d77e93613c31a16e99dc3071bc47fcac992a7c126']);
  assert.deepEqual(inUseBy('remove v: volume is in use - [a, b]'), ['a', 'b']);
  assert.deepEqual(inUseBy('no such volume'), []);
});
