import type { Options } from 'tsup';
/** Build a package's entry points into ESM with declaration files. */
export declare function preset(entry: Record<string, string>, overrides?: Partial<Options>): Options | Options[];
