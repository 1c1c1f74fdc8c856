export * from './constants.js';
export * from './confined.js';
