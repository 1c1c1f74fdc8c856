import { preset } from '@forgeone/build-preset';
export default preset({ cli: 'src/cli.ts', index: 'src/index.ts' });
