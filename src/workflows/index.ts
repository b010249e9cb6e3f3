// The workflow bundle's entry point: every workflow type the worker registers.
export { actionWorkflow } from './action-workflow.js';
