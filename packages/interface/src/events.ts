/**
 * The live event stream: one subscription to the kernel, fanned out to every server-sent-events client.
 *
 * @packageDocumentation
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ForgeError } from '@forgeone/common';

/** An event as the kernel emits it: a `type`, a `time`, and fields of its own. */
export interface HubEvent {
  /** What happened: `container.state`, `denial`, `quarantine`, `release`, `policy.changed`, `config.changed`. */
  readonly type: string;
  /** When (ms). */
  readonly time: number;
}

/** Options of {@link createEventHub}. */
export interface EventHubOptions {
  /** Subscribe to the source; returns an unsubscribe function. */
  readonly subscribe: (listener: (event: HubEvent) => void) => () => void;
  /** Comment lines sent this often keep proxies from closing idle streams, ms (default 15,000). */
  readonly heartbeatMs?: number;
  /** Streams open at once (default 64). */
  readonly maxStreams?: number;
  /** Recent events kept for clients that resume with `Last-Event-ID` (default 1024). */
  readonly history?: number;
  /** A client that has this many bytes unsent is too slow and is cut off (default 1 MiB). */
  readonly maxBufferedBytes?: number;
}

/** Options of one stream. */
export interface StreamOptions {
  /** Only these event types (default all). */
  readonly types?: readonly string[] | undefined;
  /** Resume after this event id: kept events after it are sent first. */
  readonly lastEventId?: number | undefined;
}

/** The fan-out. */
export interface EventHub {
  /** Streams open now. */
  readonly streams: number;
  /** Events seen so far (the id of the last one). */
  readonly lastId: number;
  /**
   * Start a stream on a response the caller has taken over from the framework.
   * @param request - the HTTP request
   * @param response - its response (headers not sent yet)
   * @param options - type filter, resume point
   * @throws ForgeError `RATE_LIMITED` when too many streams are open
   */
  open(request: IncomingMessage, response: ServerResponse, options?: StreamOptions): void;
  /** End every stream and unsubscribe from the source. Idempotent. */
  close(): void;
}

interface Client {
  readonly response: ServerResponse;
  readonly types: ReadonlySet<string> | undefined;
}

/**
 * Create the event hub.
 * @param options - the source and limits
 * @returns the hub
 */
export function createEventHub(options: EventHubOptions): EventHub {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxStreams = options.maxStreams ?? 64;
  const historySize = options.history ?? 1024;
  const maxBuffered = options.maxBufferedBytes ?? 1 << 20;
  const clients = new Set<Client>();
  const history: { id: number; type: string; frame: string }[] = [];
  let lastId = 0;
  let closed = false;
  let heartbeat: NodeJS.Timeout | undefined;

  const send = (c: Client, frame: string): void => {
    if (c.response.writableLength > maxBuffered) {
      // A client that does not read is cut off rather than held in memory.
      c.response.end();
      clients.delete(c);
      return;
    }
    c.response.write(frame);
  };

  const unsubscribe = options.subscribe((event) => {
    if (closed) return;
    const id = ++lastId;
    const frame = `id: ${id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
    history.push({ id, type: event.type, frame });
    if (history.length > historySize) history.shift();
    for (const c of clients) if (c.types === undefined || c.types.has(event.type)) send(c, frame);
  });

  const beat = (): void => {
    for (const c of clients) send(c, ': ping\n\n');
  };

  return {
    get streams() {
      return clients.size;
    },
    get lastId() {
      return lastId;
    },
    open(_request, response, streamOptions = {}) {
      if (closed) throw new ForgeError('INVALID_ARGUMENT', 'the server is closing');
      if (clients.size >= maxStreams) throw new ForgeError('RATE_LIMITED', `${maxStreams} event streams are open; close one first`, { details: { maxStreams } });
      const client: Client = { response, types: streamOptions.types === undefined ? undefined : new Set(streamOptions.types) };
      response.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      response.write(`retry: 2000\n: forgeone events, last id ${lastId}\n\n`);
      const after = streamOptions.lastEventId;
      if (after !== undefined) {
        for (const h of history) if (h.id > after && (client.types === undefined || client.types.has(h.type))) response.write(h.frame);
      }
      clients.add(client);
      if (heartbeat === undefined) {
        heartbeat = setInterval(beat, heartbeatMs);
        heartbeat.unref();
      }
      const gone = (): void => {
        clients.delete(client);
        if (clients.size === 0 && heartbeat !== undefined) {
          clearInterval(heartbeat);
          heartbeat = undefined;
        }
      };
      // The response closes when the client goes away (or the stream is ended).
      response.on('close', gone);
      response.on('error', gone);
    },
    close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      if (heartbeat !== undefined) clearInterval(heartbeat);
      heartbeat = undefined;
      for (const c of clients) c.response.end();
      clients.clear();
    },
  };
}
