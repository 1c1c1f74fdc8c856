export * from './preview1.js';
export * from './run.js';
