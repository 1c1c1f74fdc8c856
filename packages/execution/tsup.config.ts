import { preset } from '@forgeone/build-preset';
// Two entries: the library, and the worker script each sandboxed container runs in.
export default preset({ index: 'src/index.ts', worker: 'src/worker.ts' });
