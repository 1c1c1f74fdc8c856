import { describe, expect, it } from 'vitest';
import { withProgress } from '../src/progress.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const CLEAR = '\r\x1b[2K';

function sink(): { out: string[]; write: (t: string) => void } {
  const out: string[] = [];
  return { out, write: (t) => out.push(t) };
}

describe('withProgress', () => {
  it('shows nothing for work quicker than the delay', async () => {
    const s = sink();
    expect(await withProgress({ enabled: true, write: s.write, delayMs: 200 }, 'working', async () => 7)).toBe(7);
    expect(s.out).toEqual([]);
  });

  it('shows the line once the delay has passed and clears it at the end', async () => {
    const s = sink();
    await withProgress({ enabled: true, write: s.write, delayMs: 20 }, 'reading big.forgepkg', async () => sleep(80));
    expect(s.out[0]).toBe(`${CLEAR}reading big.forgepkg`);
    expect(s.out.at(-1)).toBe(CLEAR);
  });

  it('draws from update() during synchronous work that blocks the timer', async () => {
    const s = sink();
    await withProgress({ enabled: true, write: s.write, delayMs: 20 }, 'hashing', (p) => {
      const until = performance.now() + 40;
      while (performance.now() < until) {
        // busy, like hashing
      }
      p.update('hashing 1/1: big.bin');
    });
    expect(s.out).toEqual([`${CLEAR}hashing 1/1: big.bin`, CLEAR]);
  });

  it('clears the line when the work fails, and stays silent when disabled', async () => {
    const s = sink();
    await expect(
      withProgress({ enabled: true, write: s.write, delayMs: 10 }, 'x', async () => {
        await sleep(40);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(s.out.at(-1)).toBe(CLEAR);

    const quiet = sink();
    await withProgress({ enabled: false, write: quiet.write, delayMs: 0 }, 'x', async (p) => {
      await sleep(20);
      p.update('y');
    });
    expect(quiet.out).toEqual([]);
  });
});
