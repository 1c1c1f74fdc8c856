export * from './gate.js';
export * from './replay.js';
export * from './filesystem.js';
export * from './net.js';
