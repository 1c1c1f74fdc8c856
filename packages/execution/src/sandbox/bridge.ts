import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { ForgeError, type ErrorCode } from '@forgeone/common';
import { fromWireError, toWireError, type BridgeRequest, type BridgeResponse } from './protocol.js';
import type { BridgeHandler, SyncBridge } from './types.js';
import type { GuestClock } from './clock.js';

/**
 * Worker side of the bridge: posts a request on `port`, then blocks on `signal` (Atomics.wait) until the
 * main thread stores the request's number there, and reads the response with `receiveMessageOnPort`.
 * @param port - the worker's end of the bridge channel
 * @param signal - shared slot the main thread writes the answered request number into
 * @param defaultTimeoutMs - default wait
 * @param clock - the guest clock, paused while waiting
 * @returns the bridge
 */
export function createWorkerBridge(port: MessagePort, signal: Int32Array, defaultTimeoutMs: number, clock?: GuestClock): SyncBridge {
  let seq = 0;
  return {
    call(method: string, payload: unknown, timeoutMs = defaultTimeoutMs): unknown {
      if (typeof method !== 'string') throw new ForgeError('INVALID_ARGUMENT', 'bridge method must be a string');
      const n = (seq = (seq + 1) | 0 || 1);
      clock?.pause();
      try {
        const request: BridgeRequest = { seq: n, method, payload };
        try {
          port.postMessage(request);
        } catch (e) {
          throw new ForgeError('INVALID_ARGUMENT', `bridge payload for ${method} cannot be sent: ${e instanceof Error ? e.message : String(e)}`);
        }
        const deadline = performance.now() + timeoutMs;
        for (;;) {
          const seen = Atomics.load(signal, 0);
          if (seen === n) break;
          const left = deadline - performance.now();
          if (left <= 0) throw new ForgeError('SANDBOX_TIMEOUT', `bridge call ${method} got no answer within ${timeoutMs} ms`, { details: { method, timeoutMs } });
          Atomics.wait(signal, 0, seen, left);
        }
        for (;;) {
          const m = receiveMessageOnPort(port);
          if (m === undefined) throw new ForgeError('CONTAINER_FAILED', `bridge call ${method}: answer signalled but not delivered`);
          const response = m.message as BridgeResponse;
          if (response.seq !== n) continue; // a late answer to a call that timed out
          if (response.ok) return response.value;
          throw fromWireError(response.error);
        }
      } finally {
        clock?.resume();
      }
    },
  };
}

/**
 * Main side of the bridge: answers each request with the named async handler, then wakes the worker.
 * @param port - the main thread's end of the bridge channel
 * @param signal - the shared slot the worker waits on
 * @param handlers - the handlers by name
 * @returns a function that stops serving
 */
export function serveBridge(port: MessagePort, signal: Int32Array, handlers: Readonly<Record<string, BridgeHandler>>): () => void {
  let open = true;
  const answer = (response: BridgeResponse): void => {
    if (!open) return;
    try {
      port.postMessage(response);
    } catch (e) {
      port.postMessage({ seq: response.seq, ok: false, error: toWireError(new ForgeError('INTERNAL', `bridge answer cannot be sent: ${e instanceof Error ? e.message : String(e)}`)) } satisfies BridgeResponse);
    }
    Atomics.store(signal, 0, response.seq);
    Atomics.notify(signal, 0);
  };
  port.on('message', (request: BridgeRequest) => {
    const seq = request.seq;
    const handler = Object.hasOwn(handlers, request.method) ? handlers[request.method] : undefined;
    if (handler === undefined) {
      answer({ seq, ok: false, error: { code: 'NOT_FOUND', message: `no bridge handler named ${JSON.stringify(request.method)}` } });
      return;
    }
    let pending: Promise<unknown>;
    try {
      pending = Promise.resolve(handler(request.payload));
    } catch (e) {
      pending = Promise.reject(e);
    }
    pending.then(
      (value) => answer({ seq, ok: true, value }),
      (e: unknown) => answer({ seq, ok: false, error: toWireError(e, 'INTERNAL' satisfies ErrorCode) }),
    );
  });
  port.unref();
  return () => {
    open = false;
    port.close();
  };
}
