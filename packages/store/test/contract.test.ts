import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileStore, createMemoryStore } from '../src/index.js';
import { storeContractSuite } from '../src/testing.js';

storeContractSuite('memory', () => ({ store: createMemoryStore() }));

storeContractSuite('file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'forgeone-store-contract-'));
  // A small compaction threshold, so the suite's overwrites and deletes also exercise compaction.
  const open = () => createFileStore({ dir, compactMinGarbageBytes: 256 });
  return {
    store: await open(),
    reopen: open,
    dispose: async () => rmSync(dir, { recursive: true, force: true }),
  };
});
