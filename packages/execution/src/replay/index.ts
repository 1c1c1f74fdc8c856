export * from './gate.js';
export * from './replay.js';
