// Replay of a JavaScript (componentize-js) guest: every forgeone:host interface answers from the record, so
// the replay returns what the original run returned even with an empty store, no network and another clock.
import { beforeAll, describe, expect, it } from 'vitest';
import { buildComponentImports, createMemoryServices, instantiateComponent, transpileComponent, type LoadedComponent } from '../../src/component/index.js';
import type { CallRecord } from '../../src/gate/index.js';
import { replayComponent } from '../../src/replay/index.js';
import { ALL_FEATURES, allowAllExcept, buildGuest, policyGate } from '../component/helpers.js';

let plain: LoadedComponent;
let wasi: LoadedComponent;

beforeAll(async () => {
  [plain, wasi] = await Promise.all([
    buildGuest('plugin.js', { disable: ALL_FEATURES }).then((b) => transpileComponent(b)),
    buildGuest('plugin.js', { disable: [] }).then((b) => transpileComponent(b)),
  ]);
}, 300_000);

const enc = new TextEncoder();

/** Run `inputs` one after another on one instance (as a serving container does), recording every call. */
function recordRun(loaded: LoadedComponent, inputs: readonly string[], policy = allowAllExcept()): { records: CallRecord[]; values: string[] } {
  const { gate, recorder } = policyGate(policy);
  const services = createMemoryServices({
    kv: [['greeting', enc.encode('hello from the store')]],
    fetch: (req) => ({ status: 200, headers: [['content-type', 'text/plain']], body: enc.encode(`pong ${req.url}`) }),
  });
  const imports = buildComponentImports({
    gate,
    services,
    identity: { subject: 'plugin:test', tenant: 'acme', roles: ['plugin'], trustLevel: 'Verified' },
    info: { containerId: 'ctr-1', packageName: 'test', packageVersion: '1.0.0', kernelVersion: '0.1.0' },
  });
  const instance = instantiateComponent(loaded, imports);
  const values = inputs.map((input) => {
    const out = instance.call({ input });
    if (!out.ok) throw new Error(out.error);
    return out.value;
  });
  return { records: recorder.flush(), values };
}

describe('replay of a JavaScript plugin', () => {
  it('answers kv, fetch, identity, info and time from the record', async () => {
    const input = 'kv-get greeting';
    const { records, values } = recordRun(plain, [input]);
    expect(values).toEqual(['hello from the store']);
    const report = await replayComponent({ records, component: plain, input });
    expect(report.divergence).toBeNull();
    // No store behind the replay: the value came from the record.
    expect(report.outcome).toEqual({ ok: true, value: 'hello from the store' });

    for (const op of ['fetch http://127.0.0.1:9/x', 'identity', 'info', 'time', 'kv-list g', 'kv-del greeting', 'kv-set a b', 'kv-get missing']) {
      const run = recordRun(plain, [op]);
      const r = await replayComponent({ records: run.records, component: plain, input: op });
      expect(r.divergence, op).toBeNull();
      expect(r.outcome, op).toEqual({ ok: true, value: run.values[0] });
    }
  });

  it('replays refusals and service failures with the code and message the guest saw', async () => {
    // A fetch refused by the policy, then a fetch the gate allowed but the host service failed.
    const refused = recordRun(plain, ['fetch http://127.0.0.1:9/x'], allowAllExcept('forgeone:http/fetch'));
    expect(refused.values[0]).toMatch(/^host-error POLICY_DENIED /);
    const a = await replayComponent({ records: refused.records, component: plain, input: 'fetch http://127.0.0.1:9/x' });
    expect(a.outcome).toEqual({ ok: true, value: refused.values[0] });

    const { gate, recorder } = policyGate(allowAllExcept());
    const services = createMemoryServices(); // no fetch: the service fails with POLICY_DENIED after the gate allowed it
    const out = instantiateComponent(plain, buildComponentImports({ gate, services })).call({ input: 'fetch https://example.com/' });
    expect(out).toMatchObject({ ok: true, value: expect.stringMatching(/^host-error POLICY_DENIED these host services have no network/) });
    const b = await replayComponent({ records: recorder.flush(), component: plain, input: 'fetch https://example.com/' });
    expect(b.divergence).toBeNull();
    expect(b.outcome).toEqual(out);
  });

  it('a guest with WASI clocks and random (Date.now, Math.random) replays to the same values', async () => {
    // A replay calls the export once, so each input is recorded on its own instance.
    for (const input of ['date', 'random']) {
      const one = recordRun(wasi, [input]);
      expect(one.records.some((r) => r.syscall.startsWith(input === 'date' ? 'wasi:clocks/' : 'wasi:random/')), input).toBe(true);
      const r = await replayComponent({ records: one.records, component: wasi, input });
      expect(r.divergence, input).toBeNull();
      expect(r.outcome, input).toEqual({ ok: true, value: one.values[0] });
    }
  });

  it('the same trace offered to another input diverges at the first call that differs', async () => {
    const run = recordRun(plain, ['kv-get greeting']);
    const r = await replayComponent({ records: run.records, component: plain, input: 'kv-get other' });
    expect(r.divergence).toMatchObject({ kind: 'arguments', expected: { syscall: 'forgeone:kv/get', args: { detail: 'greeting' } }, got: { args: { detail: 'other' } } });
  });
});
