export * from './gate.js';
export * from './recorder.js';
export * from './canonical.js';
export * from './clock.js';
