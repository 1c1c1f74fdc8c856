import { preset } from '@forgeone/build-preset';
export default preset({ index: 'src/index.ts' });
