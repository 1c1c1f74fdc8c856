import { vitestPreset } from '@forgeone/build-preset/vitest';
export default vitestPreset();
