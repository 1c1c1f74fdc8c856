import type { Readable } from 'node:stream';

/** A pull reader over a Node readable stream, for a guest's live standard input. */
export interface StreamPuller {
  /**
   * Read what is available, up to `max` bytes, waiting for data when none is buffered.
   * @param max - most bytes to return
   * @returns the bytes, or null at the end of the stream (or after an error)
   */
  read(max: number): Promise<Uint8Array | null>;
  /** Stop listening; the stream is paused (and unreferenced when it is a socket, e.g. `process.stdin`). */
  release(): void;
}

/**
 * Pull bytes from a readable stream on demand: nothing is read until the guest asks, so a guest that never
 * reads standard input never touches it.
 * @param stream - the stream (e.g. `process.stdin`)
 * @returns the puller
 */
export function pullFrom(stream: Readable): StreamPuller {
  let ended = false;
  let started = false;
  const onEnd = (): void => {
    ended = true;
  };
  const onError = (): void => {
    ended = true;
  };
  return {
    async read(max: number): Promise<Uint8Array | null> {
      const n = Math.max(1, Math.floor(max));
      if (!started) {
        started = true;
        stream.on('end', onEnd);
        stream.on('error', onError);
      }
      for (;;) {
        if (ended || stream.destroyed) return null;
        const chunk: unknown = stream.read();
        if (chunk !== null) {
          const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
          if (bytes.length > n) {
            stream.unshift(bytes.subarray(n));
            return new Uint8Array(bytes.subarray(0, n));
          }
          return new Uint8Array(bytes);
        }
        if (stream.readableEnded) return null;
        await new Promise<void>((resolve) => {
          const done = (): void => {
            stream.off('readable', done);
            stream.off('end', done);
            stream.off('error', done);
            stream.off('close', done);
            resolve();
          };
          stream.on('readable', done);
          stream.on('end', done);
          stream.on('error', done);
          stream.on('close', done);
        });
      }
    },
    release(): void {
      if (!started) return;
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.pause();
      const unref = (stream as { unref?: unknown }).unref;
      if (typeof unref === 'function') (unref as () => void).call(stream);
    },
  };
}
