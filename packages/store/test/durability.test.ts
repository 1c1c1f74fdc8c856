// The kill -9 test: a child process writes to a file store and reports each acknowledged write; the parent
// kills it with SIGKILL at a random moment, reopens the store, and checks that everything acknowledged is
// there, with the right content, and that the files read cleanly. Repeated on the same directory, so each
// round also starts from the previous round's recovery.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createFileStore, type RecoveryEvent } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const writer = join(here, 'fixtures', 'writer.mjs');
const ROUNDS = Math.max(25, Number(process.env.FORGEONE_DURABILITY_ROUNDS) || 25);
const LOG = 'trace/ctr_01JD2Q5W7X4V3C9B8N6M5K4J3H';

// The same derivations as the writer (kept separate on purpose: the check does not trust the writer's code).
function mix(n: number): number {
  let h = (n ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}
function recordFor(seq: number): string {
  const h = mix(seq);
  return `record-${seq}-`.repeat(h % 33 === 0 ? 500 + (h % 2500) : 1 + (h % 60));
}
function valueFor(n: number): string {
  const h = mix(n + 0x51ed);
  return `kv-${n}-`.repeat(1 + (h % 200));
}

interface Round {
  lines: string[];
  killedAfterMs: number;
  stderr: string;
}

/** Run the writer until a random 20–200 ms after it is ready, then SIGKILL it and wait until it is gone. */
function runWriter(dir: string, baseOp: number): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, dir, String(baseOp)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let killedAfterMs = -1;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (killedAfterMs < 0 && out.length === 0 && chunk.length > 0) {
        killedAfterMs = 20 + Math.floor(Math.random() * 181);
        setTimeout(() => child.kill('SIGKILL'), killedAfterMs);
      }
      out += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    // 'close': the process has exited (and been reaped, so its pid is dead) and its pipes are drained.
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer exited by itself (code ${code}): ${stderr}`));
      // Only whole lines count: a line cut by the kill was not fully reported.
      else resolve({ lines: out.split('\n').slice(0, -1), killedAfterMs, stderr });
    });
  });
}

describe('durability under kill -9', () => {
  const dir = mkdtempSync(join(tmpdir(), 'forgeone-store-kill-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`keeps every acknowledged write across ${ROUNDS} SIGKILLs at random moments`, async () => {
    if (!existsSync(join(here, '..', 'dist', 'index.js'))) throw new Error('build the package first (the writer imports dist/)');
    const acked = new Set<number>(); // every acknowledged log seq, over all rounds
    const model = new Map<string, string>(); // the kv state known for certain after the last check
    let maxIntended = -1;
    let kvAcks = 0;
    let recordChecks = 0;
    const recoveries: RecoveryEvent[] = [];
    const killTimes: number[] = [];
    let lastLength = 0;

    for (let round = 0; round < ROUNDS; round++) {
      const { lines, killedAfterMs } = await runWriter(dir, round * 1_000_000);
      killTimes.push(killedAfterMs);
      expect(lines[0], `round ${round}: ${lines.join('|')}`).toMatch(/^READY \d+$/);
      // The writer opened the log at the length the parent saw when it last reopened the store.
      expect(Number(lines[0]!.split(' ')[1]), `round ${round}`).toBe(lastLength);

      // Replay the report: apply acknowledged kv operations; remember the one in flight at the kill.
      let inflight: { kind: 'S' | 'D'; key: string; op: number } | undefined;
      for (const line of lines.slice(1)) {
        const [tag, a, b, c] = line.split(' ');
        if (tag === 'I') {
          if (a === 'A') maxIntended = Math.max(maxIntended, Number(b));
          else if (a === 'B') maxIntended = Math.max(maxIntended, Number(b) + Number(c) - 1);
          else inflight = { kind: a as 'S' | 'D', key: b!, op: Number(c) };
        } else if (tag === 'A') {
          acked.add(Number(a));
        } else if (tag === 'B') {
          for (let s = Number(a); s < Number(a) + Number(b); s++) acked.add(s);
        } else if (tag === 'S') {
          model.set(a!, valueFor(Number(b)));
          inflight = undefined;
          kvAcks++;
        } else if (tag === 'D') {
          expect(c, `round ${round}: delete of ${a} reported existed=${c}`).toBe(String(model.has(a!)));
          model.delete(a!);
          inflight = undefined;
          kvAcks++;
        } else {
          throw new Error(`round ${round}: unexpected line ${JSON.stringify(line)}`);
        }
      }

      // Reopen as the next process would, and check.
      const store = await createFileStore({ dir, onRecover: (e) => recoveries.push(e) });
      try {
        const log = await store.log(LOG);
        const maxAcked = acked.size === 0 ? -1 : Math.max(...acked);
        expect(log.length, `round ${round}: records lost`).toBeGreaterThanOrEqual(maxAcked + 1);
        expect(log.length, `round ${round}: records never written`).toBeLessThanOrEqual(maxIntended + 1);
        // Every record reads cleanly and holds exactly what was written for its seq: this covers every
        // acknowledged record, and any unacknowledged one that made it to disk before the kill.
        for (let from = 0; from < log.length; from += 2000) {
          for (const e of await log.read(from, 2000)) {
            if (new TextDecoder().decode(e.data) !== recordFor(e.seq)) throw new Error(`round ${round}: record ${e.seq} has wrong content`);
            recordChecks++;
          }
        }
        const kv = await store.kv('state');
        const keys = new Set([...model.keys(), ...(await kv.list())]);
        for (const key of keys) {
          const got = await kv.get(key);
          const actual = got === undefined ? undefined : new TextDecoder().decode(got);
          const allowed = [model.get(key)];
          if (inflight?.key === key) allowed.push(inflight.kind === 'S' ? valueFor(inflight.op) : undefined);
          expect(allowed, `round ${round}: key ${key}`).toContain(actual);
          if (actual === undefined) model.delete(key);
          else model.set(key, actual);
        }
        maxIntended = Math.max(maxIntended, log.length - 1);
        lastLength = log.length;
      } finally {
        await store.close();
      }
    }

    console.log(
      `durability: ${ROUNDS} SIGKILLs (after ${Math.min(...killTimes)}–${Math.max(...killTimes)} ms), ` +
        `${acked.size} acknowledged log records and ${kvAcks} acknowledged kv writes, ${recordChecks} record checks, ` +
        `${recoveries.length} torn tails repaired (${recoveries.map((r) => `${r.kind}:${r.droppedBytes}B`).join(', ') || 'none'})`,
    );
    expect(acked.size).toBeGreaterThan(100);
    expect(kvAcks).toBeGreaterThan(20);
  });
});
