// The network of a replay: a NetBackend that answers every call from the record of the call in progress
// and never opens a socket.
import { ForgeError } from '@forgeone/common';
import type { NetAddress, NetBackend, NetConnection } from '../component/net.js';
import type { ReplayGate } from './gate.js';

const decoder = new TextDecoder();

function isAddress(v: unknown): v is NetAddress {
  const a = v as Partial<NetAddress> | null;
  return typeof a === 'object' && a !== null && typeof a.address === 'string' && typeof a.port === 'number' && (a.family === 'ipv4' || a.family === 'ipv6');
}

/**
 * A network backend for a replay: `wasi:sockets` calls are answered from the record of the call in
 * progress ({@link ReplayGate.recorded}, {@link ReplayGate.recordedFailure}): a connect gets the recorded
 * ends (or the recorded failure), a name lookup the recorded addresses, a read the recorded bytes (a failed
 * read without a recorded failure is the end of the stream), a write or shutdown does nothing (or fails as
 * recorded). Waiting for bytes answers "ready" at once: the record says what the read got. No socket is
 * opened and no thread is started.
 * @param gate - the replay gate
 * @returns the backend
 * @example
 * ```ts
 * const gate = new ReplayGate(records, new SyscallTable(KNOWN_SYSCALLS));
 * const imports = buildComponentImports({ gate, net: replayNet(gate) });
 * ```
 */
export function replayNet(gate: ReplayGate): NetBackend {
  let nextId = 1;
  const failed = (): void => {
    const f = gate.recordedFailure;
    if (f !== null) throw new ForgeError(f.code, `recorded failure: ${f.message}`, { details: { reason: f.message } });
  };
  const json = (what: string): unknown => {
    failed();
    const b = gate.recorded;
    if (b === null) return gate.unanswerable(`the record holds no ${what} to answer with`);
    try {
      return JSON.parse(decoder.decode(b)) as unknown;
    } catch {
      return gate.unanswerable(`the recorded ${what} is malformed`);
    }
  };
  return {
    resolve(): string[] {
      const v = json('resolved addresses');
      if (!Array.isArray(v) || !v.every((a) => typeof a === 'string')) return gate.unanswerable('the recorded resolved addresses are malformed');
      return v as string[];
    },
    connect(): NetConnection {
      const v = json('connection') as { local?: unknown; remote?: unknown } | null;
      if (v === null || typeof v !== 'object' || !isAddress(v.local) || !isAddress(v.remote)) return gate.unanswerable('the recorded connection is malformed');
      return { id: nextId++, local: v.local, remote: v.remote };
    },
    read(): Uint8Array | null {
      const cur = gate.current;
      if (cur === null || !cur.allowed) return null;
      failed();
      if (cur.result !== 0) return null;
      return gate.recorded?.slice() ?? new Uint8Array(0);
    },
    waitReadable: () => true,
    write(): void {
      failed();
    },
    shutdown(): void {
      failed();
    },
    close: () => undefined,
    dispose: () => Promise.resolve(),
  };
}
