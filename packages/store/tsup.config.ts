import { preset } from '@forgeone/build-preset';
// Two entries: the store itself, and `@forgeone/store/testing` (the contract suite, which imports vitest
// and fast-check; both are optional peer dependencies, so tsup keeps them external).
export default preset({ index: 'src/index.ts', testing: 'src/testing.ts' });
